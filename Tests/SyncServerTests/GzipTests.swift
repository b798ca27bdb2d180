import Foundation
import Testing
import SyncCore
import SyncServer

/// The transport's gzip sizes deflate's window to the body; every size must
/// still round-trip, including those around the window boundaries.
struct GzipTests {
    @Test func everySizeRoundTrips() throws {
        var generator = SplitMix64(seed: 5)
        let sizes = [0, 1, 250, 251, 1024, 3_834, 3_835, 4_096, 8_000, 16_122, 16_123, 32_506, 32_507, 40_000, 300_000]
        for size in sizes {
            let random = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let text = Array(String(repeating: "Huisbezoek: afspraken over de hulpvraag. ", count: size / 40 + 1).utf8.prefix(size))
            for body in [random, text] {
                let packed = Gzip.compress(body)
                #expect(packed.count >= 18 && packed[0] == 0x1F && packed[1] == 0x8B, "a gzip member")
                #expect(try Gzip.decompress(packed, limit: 1 << 30) == body, "size \(size)")
            }
            if size >= 1_024 { #expect(Gzip.compress(text).count < size / 5, "repetitive text still compresses well at \(size) bytes") }
        }
    }
}

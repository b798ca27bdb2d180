import Foundation
import Testing
import SyncServer

/// The gzip trailer's stated size only sizes the inflate buffer: a body whose
/// trailer lies still inflates to its real bytes, and the limit still holds.
@Suite("Gzip")
struct GzipTests {
    /// Fictional contact-note words, long enough to need several inflate rounds.
    static let text = [UInt8]((0..<40_000).map { "Huisbezoek \($0 % 97): afspraken over de planning. " }.joined().utf8)

    static func withStatedSize(_ size: UInt32, _ body: [UInt8]) -> [UInt8] {
        Array(body.dropLast(4)) + (0..<4).map { UInt8(truncatingIfNeeded: size >> (8 * UInt32($0))) }
    }

    @Test("bodies inflate to their bytes whatever size their trailer states", arguments: [nil, 1, 4096, UInt32.max])
    func trailerSizeIsOnlyAHint(stated: UInt32?) throws {
        let zipped = Gzip.compress(Self.text)
        let body = stated.map { Self.withStatedSize($0, zipped) } ?? zipped
        if stated == nil {
            #expect(try Gzip.decompress(body, limit: Self.text.count) == Self.text)
        } else {
            // zlib checks the trailer's size, so a false one is an error, never other bytes or a crash.
            #expect(throws: Gzip.DecompressionError.self) { try Gzip.decompress(body, limit: Self.text.count) }
        }
    }

    @Test("the limit holds even when the trailer understates the size")
    func theLimitHoldsAgainstAFalseTrailer() throws {
        let zipped = Self.withStatedSize(10, Gzip.compress(Self.text))
        let error = #expect(throws: Gzip.DecompressionError.self) { try Gzip.decompress(zipped, limit: 100_000) }
        #expect(error?.tooLarge == true)
        let small = [UInt8]("kort".utf8)
        #expect(try Gzip.decompress(Gzip.compress(small), limit: 4) == small)
        #expect(throws: Gzip.DecompressionError.self) { try Gzip.decompress(Gzip.compress(small), limit: 3) }
    }
}

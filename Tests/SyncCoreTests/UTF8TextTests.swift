import Foundation
import Testing
@testable import SyncCore

/// UTF8Text decides alone which bytes become a String unchecked: its verdict
/// must be the standard library's on every input, and the String it makes
/// must be the one the standard library makes.
struct UTF8TextTests {
    /// The standard library's verdict and text, the reference.
    private func reference(_ bytes: [UInt8]) -> String? { String(validating: bytes, as: UTF8.self) }

    private func ours(_ bytes: [UInt8]) -> String? { bytes.withUnsafeBufferPointer { UTF8Text.string($0) } }

    private func expectAgrees(_ bytes: [UInt8], _ comment: @autoclosure () -> String = "") {
        let expected = reference(bytes), actual = ours(bytes)
        #expect(actual == expected, "\(bytes.map { String($0, radix: 16) }) \(comment())")
        if let actual, let expected {
            // Same bytes, count and comparisons: a String made unchecked behaves as any other.
            #expect(Array(actual.utf8) == bytes)
            #expect(actual.count == expected.count && actual.unicodeScalars.count == expected.unicodeScalars.count)
            #expect(actual.hashValue == expected.hashValue)
            let ascii = bytes.allSatisfy { $0 < 0x80 }
            #expect(bytes.withUnsafeBufferPointer { UTF8Text.check($0).ascii } == ascii)
        }
    }

    /// Every sequence of one or two bytes, every three-byte sequence whose
    /// bytes are taken from the edges of the ranges that matter, and the same
    /// behind ASCII padding (so the two- and one-word steps hand over mid-word).
    @Test func agreesWithTheStandardLibraryOnEveryShortSequence() {
        for a in 0...255 { expectAgrees([UInt8(a)]) }
        for a in 0...255 { for b in 0...255 { expectAgrees([UInt8(a), UInt8(b)]) } }
        let edges: [UInt8] = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1,
                              0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF]
        for a in edges { for b in edges { for c in edges {
            expectAgrees([a, b, c])
            for d in [0x80, 0x8F, 0x90, 0xBF, 0x41] as [UInt8] { expectAgrees([a, b, c, d]) }
            for padding in [5, 7, 8, 13, 16, 21] {
                let ascii = [UInt8](repeating: 0x61, count: padding)
                expectAgrees(ascii + [a, b, c] + ascii, "padded \(padding)")
            }
        } } }
    }

    /// Random texts: valid ones built from scalars of every length, then cut
    /// short, with a byte flipped or a byte inserted anywhere.
    @Test func agreesWithTheStandardLibraryOnRandomTexts() {
        var random = SplitMix64(seed: 77)
        let scalars: [Unicode.Scalar] = ["a", "Z", " ", "\u{7F}", "\u{80}", "é", "ë", "\u{7FF}", "\u{800}", "€", "\u{D7FF}",
                                         "\u{E000}", "\u{FFFD}", "\u{FFFF}", "\u{10000}", "😀", "\u{10FFFF}"]
        for round in 0..<4_000 {
            var text = ""
            for _ in 0..<Int(random.next() % 40) {
                let scalar = random.next() % 3 == 0 ? scalars[Int(random.next() % UInt64(scalars.count))] : "e"
                text.unicodeScalars.append(scalar)
            }
            let bytes = Array(text.utf8)
            expectAgrees(bytes, "round \(round)")
            guard !bytes.isEmpty else { continue }
            let at = Int(random.next() % UInt64(bytes.count))
            expectAgrees(Array(bytes[..<at]), "cut, round \(round)")
            var flipped = bytes
            flipped[at] ^= UInt8(1 << (random.next() % 8))
            expectAgrees(flipped, "flipped, round \(round)")
            var inserted = bytes
            inserted.insert(UInt8(truncatingIfNeeded: random.next()), at: at)
            expectAgrees(inserted, "inserted, round \(round)")
        }
    }

    /// Through the reader: a note round trips, and bytes that are not UTF-8
    /// end in the reader's typed error, as they did before.
    @Test func theReaderTakesTextOnlyWhenItIsUTF8() throws {
        var writer = BinaryWriter()
        writer.string("Huisbezoek: financiële situatie besproken met cliënt (fictief) 😀")
        var reader = BinaryReader(writer.bytes)
        #expect(try reader.string() == "Huisbezoek: financiële situatie besproken met cliënt (fictief) 😀")
        for bad: [UInt8] in [[0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0x61, 0xE2, 0x82]] {
            var broken = BinaryReader([UInt8(bad.count)] + bad)
            #expect(throws: SyncCoreError.self) { try broken.string() }
        }
    }
}

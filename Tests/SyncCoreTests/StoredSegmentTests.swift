import Testing
@testable import SyncCore

/// The stored form of a segment (decision 43) and the LZ4 block codec under it:
/// round trips, interoperability with the reference LZ4, and damaged input.
struct StoredSegmentTests {
    static let sentence = Array("Gesprek aan de keukentafel. Gesprek aan de keukentafel over de was en de boodschappen. ".utf8)
        + Array(repeating: UInt8(ascii: "a"), count: 40) + Array(" einde.".utf8)

    /// `sentence` as the reference LZ4 (lz4 4.x, high compression) compresses it:
    /// our decoder reads another implementation's blocks.
    static let referenceBlock: [UInt8] = [
        0xff, 0x0d, 0x47, 0x65, 0x73, 0x70, 0x72, 0x65, 0x6b, 0x20, 0x61, 0x61, 0x6e, 0x20, 0x64, 0x65, 0x20, 0x6b,
        0x65, 0x75, 0x6b, 0x65, 0x6e, 0x74, 0x61, 0x66, 0x65, 0x6c, 0x2e, 0x20, 0x1c, 0x00, 0x07, 0x50, 0x20, 0x6f,
        0x76, 0x65, 0x72, 0x14, 0x00, 0x51, 0x77, 0x61, 0x73, 0x20, 0x65, 0x1e, 0x00, 0xff, 0x00, 0x62, 0x6f, 0x6f,
        0x64, 0x73, 0x63, 0x68, 0x61, 0x70, 0x70, 0x65, 0x6e, 0x2e, 0x20, 0x61, 0x01, 0x00, 0x14, 0x70, 0x20, 0x65,
        0x69, 0x6e, 0x64, 0x65, 0x2e,
    ]

    @Test func referenceBlocksDecode() throws {
        #expect(try LZ4Block.decompress(Self.referenceBlock[...], count: Self.sentence.count) == Self.sentence)
    }

    /// Our own block of the sentence, pinned: the compressor is deterministic
    /// (stored bytes of equal states are equal) and follows the format's end
    /// rules, which the reference decoder checked when this was pinned.
    @Test func compressorOutputIsPinned() throws {
        let block = LZ4Block.compress(Self.sentence)
        #expect(block == [
            0xff, 0x0d, 0x47, 0x65, 0x73, 0x70, 0x72, 0x65, 0x6b, 0x20, 0x61, 0x61, 0x6e, 0x20, 0x64, 0x65, 0x20, 0x6b,
            0x65, 0x75, 0x6b, 0x65, 0x6e, 0x74, 0x61, 0x66, 0x65, 0x6c, 0x2e, 0x20, 0x1c, 0x00, 0x07, 0x50, 0x20, 0x6f,
            0x76, 0x65, 0x72, 0x30, 0x00, 0x51, 0x77, 0x61, 0x73, 0x20, 0x65, 0x3a, 0x00, 0xff, 0x00, 0x62, 0x6f, 0x6f,
            0x64, 0x73, 0x63, 0x68, 0x61, 0x70, 0x70, 0x65, 0x6e, 0x2e, 0x20, 0x61, 0x01, 0x00, 0x14, 0x70, 0x20, 0x65,
            0x69, 0x6e, 0x64, 0x65, 0x2e,
        ])
        #expect(try LZ4Block.decompress(block[...], count: Self.sentence.count) == Self.sentence)
    }

    /// Seeded inputs from random to highly repetitive, of every small length
    /// and a few large ones (matches beyond the 64 KiB window, long runs).
    @Test func roundTripsAnyInput() throws {
        var rng = SplitMix64(seed: 43)
        let words = ["de ", "het ", "huisbezoek ", "keukentafel ", "schulden ", "a", "é", "\n"].map { Array($0.utf8) }
        var lengths = Array(0...300)
        lengths += [4_096, 65_535, 65_536, 70_000, 200_000]
        for length in lengths {
            for style in 0..<3 {
                var input: [UInt8] = []
                input.reserveCapacity(length)
                while input.count < length {
                    switch style {
                    case 0: input.append(UInt8.random(in: 0...255, using: &rng))
                    case 1: input += words[Int.random(in: 0..<words.count, using: &rng)]
                    default: input.append(UInt8.random(in: 0...1, using: &rng) == 0 ? 0x61 : 0x62)
                    }
                }
                input.removeLast(input.count - length)
                let block = LZ4Block.compress(input)
                let back = try LZ4Block.decompress(block[...], count: input.count)
                #expect(back == input, "length \(length), style \(style)")
                let rulesHold = Self.endRulesHold(block, count: input.count)  // not the block itself in a failure's message
                #expect(rulesHold, "length \(length), style \(style)")
                if length >= 4_096, style == 1 { #expect(block.count * 2 < input.count, "length \(length), style \(style) compresses") }
            }
        }
    }

    /// Any damage ends in a typed error or in exactly the declared bytes: never
    /// a crash, a read outside the block or more than the declared size.
    @Test func damagedBlocksGiveTypedErrors() throws {
        var rng = SplitMix64(seed: 4_343)
        let block = LZ4Block.compress(Self.sentence)
        let count = Self.sentence.count
        // LZ4 has no checksum, so a damaged literal decodes to other bytes of the right
        // length (the sealed row's authentication catches that); what must hold is that
        // decoding ends, in bounds, with bytes or a typed error.
        func attempt(_ bytes: [UInt8], count: Int) {
            do {
                _ = try LZ4Block.decompress(bytes[...], count: count)
            } catch {
                #expect([.malformed, .truncated, .tooLarge].contains(error.code))
            }
        }
        for cut in 0..<block.count { attempt(Array(block.prefix(cut)), count: count) }
        for _ in 0..<5_000 {
            var damaged = block
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                damaged[Int.random(in: 0..<damaged.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            attempt(damaged, count: Int.random(in: 0...(count * 2), using: &rng))
        }
        // A match that points before the start, and one declared size too large to be honest.
        #expect(throws: SyncCoreError.self) { try LZ4Block.decompress([0x10, 0x61, 0x05, 0x00, 0x00][...], count: 10) }
        #expect(throws: SyncCoreError.self) { try LZ4Block.decompress([0x10, 0x61][...], count: 1 << 20) }
        #expect(throws: SyncCoreError.self) { try LZ4Block.decompress([0x10, 0x61][...], count: 2) }
    }

    /// The format's end rules, which a lenient decoder (ours) does not check but
    /// others may: the last sequence is literals only, at least five of them once
    /// the input is 13 bytes or more (else all of it), and no match starts in the
    /// last twelve bytes. Reads a block the decoder has accepted.
    static func endRulesHold(_ block: [UInt8], count: Int) -> Bool {
        var read = 0, written = 0
        func length(startingAt base: Int) -> Int {
            var total = base
            while true {
                let byte = Int(block[read])
                read += 1
                total += byte
                if byte != 255 { return total }
            }
        }
        while true {
            let token = Int(block[read])
            read += 1
            var literals = token >> 4
            if literals == 15 { literals = length(startingAt: 15) }
            read += literals
            written += literals
            if read == block.count { return written == count && (count >= 13 ? literals >= 5 : literals == count) }
            read += 2
            var match = (token & 15) + 4
            if token & 15 == 15 { match = length(startingAt: match) }
            if written > count - 12 { return false }
            written += match
        }
    }

    /// A segment with text stores compressed and reads back as the same
    /// canonical bytes; a small one stores as its canonical bytes (format 1,
    /// what every earlier device wrote), and both forms read back.
    @Test func segmentsStoreCompressedWhenLarge() throws {
        var replica = ClientReplica(replica: ReplicaID(7), user: "wendy", schema: Fixture.schema,
                                    policy: Fixture.context(user: "wendy", role: "wmo-consulent"))
        let h = Fixture.household
        _ = try replica.createHousehold(id: h, label: "Fam. Test", wall: Fixture.t0)
        let key = SegmentKey(household: h, purpose: .wmo)
        _ = try replica.set(household: h, field: "wmo_request", value: "Hulp", wall: Fixture.t0 + 1)
        let small = try #require(replica.view(key))
        #expect(small.storedBytes() == small.canonicalBytes())
        for visit in 0..<20 {
            try replica.appendLog(household: h, purpose: .wmo, kind: "huisbezoek", occurredAt: Fixture.t0 - 3_600_000,
                                  text: "Gesprek aan de keukentafel over de was en de boodschappen, bezoek \(visit).", wall: Fixture.t0 + 2 + UInt64(visit))
        }
        let large = try #require(replica.view(key))
        let canonical = large.canonicalBytes()
        let stored = large.storedBytes()
        #expect(stored.first == 2)
        #expect(stored.count * 2 < canonical.count)
        #expect(try SegmentState.canonicalBytes(stored: stored) == canonical)
        #expect(try SegmentState(storedBytes: stored).canonicalBytes() == canonical)
        #expect(try SegmentState(storedBytes: canonical).canonicalBytes() == canonical, "format 1 still reads")
        #expect(try SegmentState(storedBytes: stored).key == key)

        // A stored form cut short or with a size that does not match never reads.
        for cut in [1, 2, stored.count / 2, stored.count - 1] {
            #expect(throws: SyncCoreError.self) { try SegmentState(storedBytes: Array(stored.prefix(cut))) }
        }
        var wrongSize = stored
        wrongSize[1] ^= 0x01
        #expect(throws: SyncCoreError.self) { try SegmentState(storedBytes: wrongSize) }
        #expect(throws: SyncCoreError.self) { try SegmentState(storedBytes: [3, 0, 0]) }  // no such format
        #expect(throws: SyncCoreError.self) { try SegmentState(storedBytes: [2, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0]) }  // over 2 GiB
        #expect(throws: SyncCoreError.self) { try SegmentState(storedBytes: []) }
    }
}

/// A whole state to and from its stored form, for the tests: the store itself
/// works on canonical bytes it already has (LocalStore compares them to find
/// what changed), through `storedBytes(canonical:)` and `canonicalBytes(stored:)`.
extension SegmentState {
    func storedBytes() -> [UInt8] { Self.storedBytes(canonical: canonicalBytes()) }

    init(storedBytes bytes: [UInt8]) throws(SyncCoreError) {
        try self.init(canonicalBytes: Self.canonicalBytes(stored: bytes))
    }
}

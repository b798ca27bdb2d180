import Testing
@testable import SyncCore

/// State hashes and op fingerprints are stored formats: a server keeps each
/// segment's element digest and each op's fingerprint in its database, and
/// devices compare state hashes with the server's. A faster hasher must give
/// the same values, or every stored digest would call its segment diverged and
/// every re-pushed op would be refused as a reused dot. These values were
/// printed by the build before the hashing was rewritten for speed.
@Suite struct StoredHashTests {
    @Test func stateHashesAndFingerprintsKeepTheirStoredValues() {
        let household = HouseholdID(high: 0x0123_4567_89AB_CDEF, low: 0xFEDC_BA98_7654_3210)
        let regie = SegmentKey(household: household, purpose: .regie)
        func op(_ replica: UInt32, _ counter: UInt64, _ context: [(UInt32, UInt64)], _ payload: OperationPayload) -> SyncOperation {
            SyncOperation(dot: Dot(replica: ReplicaID(replica), counter: counter), segment: regie, epoch: 0,
                          stamp: HLCTimestamp(milliseconds: 1_736_150_400_000 + counter * 1000, logical: UInt16(counter % 3)),
                          author: "worker\(replica)", context: VersionVector(context.map { (ReplicaID($0.0), $0.1) }), payload: payload)
        }
        let goal = Dot(replica: ReplicaID(2), counter: 3), moved = Dot(replica: ReplicaID(2), counter: 4)
        let ops = [
            op(2, 1, [], .createHousehold),
            op(2, 2, [(2, 1)], .set(field: "label", value: "Familie Jansen, Dorpsstraat", resolves: [])),
            op(3, 1, [(2, 1)], .set(field: "label", value: "Fam. Jansen ë", resolves: [])),
            op(3, 2, [(2, 1), (3, 1)], .append(log: "contactlog", entry: LogEntryBody(
                kind: "huisbezoek", occurredAt: 1_736_150_000_000,
                text: "Keukentafelgesprek gevoerd over schulden en zorg; vervolg over twee weken."))),
            op(2, 3, [(2, 2)], .insert(collection: "doelen", position: [128], text: "Schulden in beeld")),
            op(2, 4, [(2, 3)], .insert(collection: "doelen", position: [64, 1, 2, 3, 4, 5, 6, 7, 8, 9], text: "Dagbesteding")),
            op(3, 3, [(2, 3), (3, 2)], .edit(collection: "doelen", item: goal, field: .status, value: "done")),
            op(2, 5, [(2, 4), (3, 3)], .remove(collection: "doelen", item: moved)),
            op(3, 4, [(2, 3), (3, 3)], .move(collection: "doelen", item: moved, position: [200, 7])),
        ]
        let expected = [
            ("93445f3971eea82f", "77040c7869a68939a55b6e50a3bc21b4"),
            ("22817a2ee6a743bd", "250c4d4102e0fe3c422b23b6327b4a66"),
            ("337e66762457a4b4", "72985891aa775f7c7ff21244bec7bbaf"),
            ("e4d3969bcae27802", "46806120b225f334094b031a6fd11ed7"),
            ("6247a13d19e9e594", "ce09ffd7bd5faf1ce3e4a1d06936982f"),
            ("38a78d6531f7f759", "98eb638ffabd82e9065f941c54ca0832"),
            ("490dfa7dff8afe48", "dc85f65adc1a561db8f7959e131a953a"),
            ("a7c43dbec67ef0fb", "eeb5e8d0f3eaecb5fc7a719a55e3d164"),
            ("17cbd5fb2346ab0b", "a3d1782c22e2df939a80c010271ce9f3"),
        ]
        var state = SegmentState(key: regie, epoch: 0)
        for (op, (stateHash, fingerprint)) in zip(ops, expected) {
            state.apply(op)
            #expect(SHA256Digest.hex(state.stateHash()) == stateHash)
            #expect(state.stateHashWord() == StateCheck.sum([state.stateHash()]).bytes.reversed().reduce(0) { $0 << 8 | UInt64($1) })
            #expect(SHA256Digest.hex(PushProcessor.fingerprint(op).bytes) == fingerprint)
        }
        // The digest kept up to date op by op equals the one a store rebuilds from the elements.
        var rebuilt = SegmentState(key: regie, epoch: 0)
        rebuilt.join(context: state.context)
        for element in state.elements { rebuilt.join(element) }
        #expect(rebuilt.elementDigest == state.elementDigest)
    }

    /// The word both hashers end a text with equals the bytes gathered one by
    /// one (the hashes it feeds are stored), for every length and start.
    @Test func tailWordIsTheLeftBytesLittleEndian() {
        let bytes: [UInt8] = (0..<24).map { UInt8(truncatingIfNeeded: 0x11 &* ($0 + 1)) }
        for count in 0...bytes.count {
            for offset in stride(from: count, through: max(0, count - 7), by: -1) {
                var expected: UInt64 = 0
                for index in offset..<count { expected |= UInt64(bytes[index]) << UInt64(8 * (index - offset)) }
                let tail = bytes.withUnsafeBytes { $0.baseAddress!.littleEndianTail(from: offset, count: count) }
                #expect(tail == expected, "count \(count), offset \(offset)")
            }
        }
    }

    /// The state hash lays its bytes out itself, on the stack; they must be the
    /// bytes a BinaryWriter writes for the same parts, also where the pinned
    /// trace above never goes: a context with out-of-order dots (a cloud),
    /// counters of several varint bytes, a purpose outside ASCII.
    @Test func stateHashBytesAreTheWritersBytes() {
        let household = HouseholdID(high: 0x8000_0000_0000_0001, low: 0x0000_00FF_0000_0080)
        let contexts = [
            CausalContext(),
            CausalContext(vector: VersionVector([(ReplicaID(1), 127), (ReplicaID(300), 128), (ReplicaID(70_000), 1 << 40)])),
            CausalContext(vector: VersionVector([(ReplicaID(2), 5)]),
                          cloud: [Dot(replica: ReplicaID(2), counter: 9), Dot(replica: ReplicaID(40_000), counter: 200_000)]),
        ]
        for purpose in [Purpose.regie, Purpose("WMO"), Purpose("CONSENT_MONITOR_LONG_CODE"), Purpose("ZÖRG")] {
            for context in contexts {
                for epoch: UInt32 in [0, 200, .max] {
                    let key = SegmentKey(household: household, purpose: purpose)
                    let digest = ContentHash128(high: 0x1111_2222_3333_4444, low: 0x5555_6666_7777_8888)
                    var writer = BinaryWriter(capacity: 64)
                    writer.byte(1)
                    writer.household(household)
                    writer.string(purpose.rawValue)
                    writer.varint(UInt64(epoch))
                    writer.context(context)
                    let word = (ContentHash128.of(writer.bytes) + digest).high
                    let expected = (0..<8).map { UInt8(truncatingIfNeeded: word >> UInt64(56 - 8 * $0)) }
                    #expect(SegmentState.stateHash(key: key, epoch: epoch, context: context, elementDigest: digest) == expected,
                            "\(purpose) \(context) epoch \(epoch)")
                    // The word a pull sums (SegmentHash) is the same 8 bytes read little-endian.
                    #expect(SegmentState.stateHashWord(key: key, epoch: epoch, context: context, elementDigest: digest) == word.byteSwapped)
                }
            }
            #expect(contexts[2].cloud.count == 2, "the cloud stays out of order")
        }
    }
}

import Foundation
import Testing
@testable import SyncCore

/// The binary codec and the JSON form: round trips, sizes, and hostile input.
struct CodecTests {
    let h = Fixture.household
    let segment = SegmentKey(household: Fixture.household, purpose: .wmo)

    /// A realistic sync exchange produced by the replica and the in-memory server.
    func sampleMessages() throws -> (SyncRequest, SyncResponse) {
        var server = InMemorySyncServer(schema: Fixture.schema)
        server.policies["wendy"] = Fixture.context(user: "wendy", role: "wmo-consulent")
        server.policies["wendy"]!.grants = [Grant(purpose: .jw, access: .read, household: h, until: Fixture.t0 + Fixture.day)]
        server.policies["wendy"]!.involvement = [h: [Involvement(user: "bas", role: "buurtcoach", purposes: [.regie], contact: "06-00000000", restricted: false)]]
        var replica = ClientReplica(replica: ReplicaID(10), user: "wendy", schema: Fixture.schema, policy: server.policies["wendy"]!)
        let wall = Fixture.t0
        _ = try replica.createHousehold(id: h, label: "Fam. Test", wall: wall)
        try replica.set(household: h, field: "wmo_request", value: "Hulp bij de was", wall: wall + 1)
        try replica.set(household: h, field: "wmo_request", value: "Hulp bij het huishouden", wall: wall + 1)  // absorbs the first
        try replica.appendLog(household: h, purpose: .wmo, kind: "huisbezoek", occurredAt: wall - 3600_000, text: "Gesprek aan de keukentafel.", wall: wall + 2)
        let goal = try replica.insertItem(household: h, purpose: .wmo, text: "Zelfstandig boodschappen doen", wall: wall + 3)
        try replica.editItem(household: h, purpose: .wmo, item: goal.dot, field: .status, value: "done", wall: wall + 4)
        replica.recordRead(household: h, purpose: .wmo, action: "show", count: 3, wall: wall + 5)
        let request = replica.makeRequest()
        var response = try server.sync(request, device: DeviceIdentity(replica: ReplicaID(10), user: "wendy", deviceID: "d"), now: wall + 10)
        response.rejected = [RejectedOp(segment: segment, epoch: 2, dot: Dot(replica: ReplicaID(10), counter: 9), reason: .readOnly)]
        response.purge = [PurgeInstruction(segment: SegmentKey(household: h, purpose: .jw), epoch: 0, reason: PurgeInstruction.notReadable)]
        response.cursor = SyncCursor(seq: 4, resumeAfter: segment, resumeSeq: 9)
        response.more = true
        response.schema = Fixture.schema
        let full = try server.sync(SyncRequest(cursor: .start, schemaHash: "", held: HeldSet(segments: [], includeList: true)),
                                   device: DeviceIdentity(replica: ReplicaID(10), user: "wendy", deviceID: "d"), now: wall + 20)
        response.snapshots = full.snapshots
        response.deltas = full.snapshots
        return (request, response)
    }

    @Test func binaryAndJSONRoundTripsAreEqual() throws {
        let (request, response) = try sampleMessages()
        #expect(!request.ops.isEmpty && !response.snapshots.isEmpty)
        let binaryRequest = try SyncRequest(binary: request.binaryEncoded())
        let jsonRequest = try MessageJSON.decode(SyncRequest.self, from: MessageJSON.encode(request))
        #expect(binaryRequest == request)
        #expect(jsonRequest == request)
        let binaryResponse = try SyncResponse(binary: response.binaryEncoded())
        let jsonResponse = try MessageJSON.decode(SyncResponse.self, from: MessageJSON.encode(response))
        #expect(binaryResponse == response)
        #expect(jsonResponse == response)
        #expect(binaryResponse == jsonResponse)
    }

    @Test func absorbedWritesRoundTripAndBadDistancesAreMalformed() throws {
        let (request, _) = try sampleMessages()
        let writer = try #require(request.ops.first { $0.absorbs != nil }, "the second write absorbs the first")
        #expect(writer.absorbs?.count == 1)
        #expect(!request.ops.contains { if case .set(_, "Hulp bij de was", _) = $0.payload { return true } else { return false } })
        #expect(try SyncRequest(binary: request.binaryEncoded()) == request)
        #expect(try MessageJSON.decode(SyncRequest.self, from: MessageJSON.encode(request)) == request)
        // An absorbed counter at or above the op's own is malformed, not a crash.
        for bad in [writer.dot.counter, writer.dot.counter + 1] {
            var hostile = request
            hostile.ops = request.ops.map { op in
                var op = op
                if op.absorbs != nil { op.absorbs = [bad] }
                return op
            }
            #expect(throws: SyncCoreError.self) { _ = try SyncRequest(binary: hostile.binaryEncoded()) }
        }
    }

    /// A paged pull's cursor names a segment whose household nothing else in
    /// the message mentions: it must still round trip (it did not once, and
    /// the saved cursor then broke every later sync).
    /// The writer finds symbols it used lately by the string's own bytes
    /// (SymbolCache): equal text built apart, large strings, evictions and a
    /// string freed mid-message must all read back as written.
    @Test func symbolsReadBackAsWrittenWhateverTheirStorage() throws {
        var random = SplitMix64(seed: 5)
        let names = (0..<40).map { index in index % 3 == 0 ? "f\(index)" : "a field name longer than fifteen bytes \(index)" }
        var writer = BinaryWriter()
        var written: [String] = []
        for round in 0..<600 {
            // A fresh copy of the text each time (separate storage for the large ones).
            var name = String(names[Int(random.next() % UInt64(names.count))].utf8.map { Character(UnicodeScalar($0)) })
            if round % 50 == 0 { name = String(repeating: "x", count: 20 + round % 7) }  // made and freed within the loop
            writer.symbol(name)
            written.append(name)
        }
        var reader = BinaryReader(writer.bytes)
        for expected in written { #expect(try reader.symbol() == expected) }
        #expect(reader.isAtEnd)
    }

    /// Symbols are told apart by their bytes: two spellings of one name (Swift
    /// calls them equal) each read back as written, and a static symbol's
    /// look-alike is written as its own literal.
    @Test func symbolsKeepTheirBytes() throws {
        let composed = "beoordel\u{E9}", decomposed = "beoordele\u{301}", kelvin = "\u{212A}"
        #expect(composed == decomposed && kelvin == "K")  // what a String key would have merged
        var writer = BinaryWriter()
        for name in [composed, decomposed, kelvin, "K", "REGIE", composed, decomposed, kelvin] { writer.symbol(name) }
        var reader = BinaryReader(writer.bytes)
        for expected in [composed, decomposed, kelvin, "K", "REGIE", composed, decomposed, kelvin] {
            #expect(Array(try reader.symbol().utf8) == Array(expected.utf8))
        }
        #expect(reader.isAtEnd)
    }

    /// Segment keys and household IDs hash with KeyHash: thousands of them,
    /// made to share words, still find exactly their own entries.
    @Test func keysWithSharedWordsStayApartInTables() {
        var table: [SegmentKey: Int] = [:]
        var households: Set<HouseholdID> = []
        let purposes: [Purpose] = [.regie, .wmo, .jw, .wgs, "REGIE2"]
        for index in 0..<2_000 {
            // Half share the high word, half the low one: a weak mix would pile them into few buckets.
            let id = index % 2 == 0 ? HouseholdID(high: 7, low: UInt64(index)) : HouseholdID(high: UInt64(index), low: 7)
            households.insert(id)
            for (offset, purpose) in purposes.enumerated() { table[SegmentKey(household: id, purpose: purpose)] = index * 8 + offset }
        }
        #expect(households.count == 2_000 && table.count == 10_000)
        for index in 0..<2_000 {
            let id = index % 2 == 0 ? HouseholdID(high: 7, low: UInt64(index)) : HouseholdID(high: UInt64(index), low: 7)
            #expect(households.contains(id))
            for (offset, purpose) in purposes.enumerated() {
                #expect(table[SegmentKey(household: id, purpose: purpose)] == index * 8 + offset)
            }
        }
        #expect(table[SegmentKey(household: HouseholdID(high: 9_999, low: 9_999), purpose: .regie)] == nil)
        #expect(table[SegmentKey(household: HouseholdID(high: 7, low: 7), purpose: "WMO2")] == nil)
    }

    @Test func pagedCursorAloneRoundTrips() throws {
        let cursor = SyncCursor(seq: 77, resumeAfter: SegmentKey(household: Fixture.otherHousehold, purpose: .jw), resumeSeq: 90)
        let request = SyncRequest(cursor: cursor, schemaHash: Fixture.schema.contentHash,
                                  held: HeldSet(segments: [HeldSegment(segment: segment, epoch: 0)], includeList: false))
        #expect(try SyncRequest(binary: request.binaryEncoded()) == request)
        let response = SyncResponse(policy: nil, cursor: cursor, serverTime: Fixture.t0, maxBody: 1 << 20)
        #expect(try SyncResponse(binary: response.binaryEncoded()) == response)
    }

    /// A section's body is written in place behind room for its length, which is
    /// then moved into the width the length takes: every width gives
    /// `tag, varint(length), body`, and what came before stays as it was.
    @Test func sectionsWrittenInPlaceHaveTheirLengthInFront() throws {
        for length in [0, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, 2_200_000] {
            let body = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            var writer = BinaryWriter()
            writer.raw([0xAB, 0xCD])
            writer.section(9) { $0.raw(body) }
            writer.byte(0xEF)
            var expected = BinaryWriter()
            expected.raw([0xAB, 0xCD])
            expected.byte(9)
            expected.data(body)
            expected.byte(0xEF)
            #expect(writer.bytes == expected.bytes, "body of \(length) bytes")
        }
        // A body with symbols, stamps and households has a writer of its own, as a
        // section written apart had: its own string table and stamp base, the message's
        // household table. A symbol and a stamp written before it do not leak in.
        let table: [HouseholdID: UInt32] = [h: 0]
        func body(_ w: inout BinaryWriter) {
            w.symbol("wmo_request")
            w.symbol("wmo_request")
            w.stamp(HLCTimestamp(milliseconds: Fixture.t0 + 5, logical: 2))
            w.household(h)
            w.household(Fixture.otherHousehold)
            w.string("Gesprek (fictief)")
        }
        var writer = BinaryWriter()
        writer.householdTable = table
        writer.symbol("wmo_request")
        writer.stamp(HLCTimestamp(milliseconds: Fixture.t0, logical: 0))
        let prefix = writer.bytes
        writer.section(4, body)
        var apart = BinaryWriter()
        apart.householdTable = table
        body(&apart)
        var expected = prefix
        var framing = BinaryWriter()
        framing.byte(4)
        framing.data(apart.bytes)
        expected += framing.bytes
        #expect(writer.bytes == expected)
    }

    /// A goal's write and remove dots arrive as lists; a body that repeats one
    /// or lists them out of order decodes to the same item as a clean one.
    @Test func repeatedItemDotsDecodeToOneCanonicalItem() throws {
        let id = Dot(replica: ReplicaID(3), counter: 4)
        let other = Dot(replica: ReplicaID(2), counter: 9)
        func row(writes: [Dot], removes: [Dot]) -> [UInt8] {
            var writer = BinaryWriter()
            writer.byte(3)  // an item
            writer.symbol("doelen")
            writer.dot(id)
            writer.byte(1 | 16)  // a base position and removes; writes listed, covers written
            writer.data([0x80])
            writer.varint(writes.count)
            for dot in writes { writer.dot(dot) }
            writer.vector(VersionVector(), relativeTo: VersionVector())
            writer.varint(removes.count)
            for dot in removes { writer.dot(dot) }
            return writer.bytes
        }
        let clean = try SegmentElement.decodeRow(row(writes: [id, other], removes: [other]))
        let repeated = try SegmentElement.decodeRow(row(writes: [other, id, other, id], removes: [other, other]))
        #expect(repeated == clean)
        #expect(repeated.encodedRow() == clean.encodedRow())
        guard case .item(_, let item) = repeated else { Issue.record("not an item"); return }
        #expect(item.removes == [other])
    }

    /// A household missing from the message's table is written in full, not as a bad index.
    @Test func householdOutsideTheTableIsWrittenInFull() throws {
        var writer = BinaryWriter()
        writer.householdTable = [h: 0]
        writer.household(h)
        writer.household(Fixture.otherHousehold)
        #expect(writer.bytes.count == 1 + 1 + 16)
        var reader = BinaryReader(writer.bytes, householdList: [h])
        #expect(try reader.household() == h)
        #expect(try reader.household() == Fixture.otherHousehold)
        #expect(reader.isAtEnd)
        var bad = BinaryReader([5], householdList: [h])
        #expect(throws: SyncCoreError.self) { try bad.household() }
    }

    /// A counter beyond Dot.maxCounter is malformed at decode time, before
    /// anything adds to it (a dense op after UInt64.max used to trap).
    @Test func countersBeyondTheBoundAreMalformed() throws {
        for counter in [Dot.maxCounter + 1, UInt64.max] {
            let op = SyncOperation(dot: Dot(replica: ReplicaID(12), counter: counter), segment: segment, epoch: 0,
                                   stamp: HLCTimestamp(milliseconds: Fixture.t0, logical: 0), author: "wendy",
                                   context: VersionVector(), payload: .set(field: "wmo_request", value: "x", resolves: []))
            let request = SyncRequest(cursor: .start, schemaHash: Fixture.schema.contentHash,
                                      held: HeldSet(segments: [], includeList: false), ops: [op, op])
            #expect(throws: SyncCoreError.self) { try SyncRequest(binary: request.binaryEncoded()) }
            let rejected = SyncResponse(rejected: [RejectedOp(segment: segment, epoch: 0, dot: op.dot, reason: .invalid)],
                                        policy: nil, cursor: .start, serverTime: Fixture.t0, maxBody: 1 << 20)
            #expect(throws: SyncCoreError.self) { try SyncResponse(binary: rejected.binaryEncoded()) }
        }
        let edge = writes(2, value: { "v\($0)" }, field: { _ in "wmo_request" })
        #expect(try SyncRequest(binary: edge.binaryEncoded()) == edge)
    }

    /// Field writes in one message, as a device pushes them after a visit.
    func writes(_ count: Int, value: (Int) -> String, field: (Int) -> String) -> SyncRequest {
        var ops: [SyncOperation] = []
        var context = VersionVector()
        context.raise(ReplicaID(3), to: 40)
        for i in 0..<count {
            ops.append(SyncOperation(dot: Dot(replica: ReplicaID(12), counter: UInt64(i + 1)), segment: segment, epoch: 0,
                                     stamp: HLCTimestamp(milliseconds: Fixture.t0 + UInt64(i) * 45_000, logical: 0), author: "wendy",
                                     context: context, payload: .set(field: field(i), value: value(i), resolves: [])))
            context.raise(ReplicaID(12), to: UInt64(i + 1))
        }
        return SyncRequest(cursor: SyncCursor(seq: 1234), schemaHash: Fixture.schema.contentHash,
                           held: HeldSet(segments: [], includeList: false), ops: ops)
    }

    @Test func fieldWriteOverheadIsSmall() {
        let fields = ["wmo_request", "wmo_investigation", "usual_help_context", "wmo_indication", "carer_load"]
        let value = { (i: Int) in "Waarde \(i) voor het veld." }
        let empty = writes(0, value: value, field: { fields[$0 % 5] }).binaryEncoded().count
        let one = writes(1, value: value, field: { fields[$0 % 5] })
        let hundred = writes(100, value: value, field: { fields[$0 % 5] })
        let valueBytes = { (request: SyncRequest) in request.ops.reduce(0) { sum, op in
            if case .set(_, let v, _) = op.payload { return sum + v.utf8.count }
            return sum
        } }
        let single = one.binaryEncoded().count - empty - valueBytes(one)
        let amortized = Double(hundred.binaryEncoded().count - empty - valueBytes(hundred)) / 100
        print("codec: single field write overhead \(single) B; amortized over 100 writes \(amortized) B")
        #expect(amortized < 10)
        #expect(single < 64)
    }

    @Test func contactLogAppendSize() throws {
        var replica = ClientReplica(replica: ReplicaID(12), user: "wendy", schema: Fixture.schema,
                                    policy: Fixture.context(user: "wendy", role: "wmo-consulent"))
        let text = String(repeating: "Gesprek met moeder over de huur. ", count: 13).prefix(400)
        try replica.appendLog(household: h, purpose: .wmo, kind: "huisbezoek", occurredAt: Fixture.t0 - 600_000, text: String(text), wall: Fixture.t0)
        let request = replica.makeRequest()
        let bare = SyncRequest(cursor: request.cursor, schemaHash: request.schemaHash, held: request.held)
        let size = request.binaryEncoded().count - bare.binaryEncoded().count
        print("codec: 400-character contact-log append encodes to \(size) B in a request (\(size - 400) B beyond its text)")
        #expect(size < 400 + 64)
    }

    @Test func hostileBinaryNeverCrashes() throws {
        let (request, response) = try sampleMessages()
        let seeds: [[UInt8]] = [request.binaryEncoded(), response.binaryEncoded()]
        var rng = SplitMix64(seed: 2026)
        var decodedOK = 0
        var failed = 0
        for round in 0..<6000 {
            var bytes = seeds[round % 2]
            switch round % 4 {
            case 0: bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &rng)))  // truncated
            case 1:
                for _ in 0..<Int.random(in: 1...8, using: &rng) {
                    bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
            case 2:
                // A huge declared length or count somewhere.
                let at = Int.random(in: 2..<bytes.count, using: &rng)
                bytes.replaceSubrange(at..<min(bytes.count, at + 5), with: [0xFF, 0xFF, 0xFF, 0xFF, 0x0F])
            default:
                bytes = (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                if Bool.random(using: &rng) { bytes.insert(contentsOf: [0x46, 0x51], at: 0) }
            }
            if round % 2 == 0 {
                if (try? SyncRequest(binary: bytes)) != nil { decodedOK += 1 } else { failed += 1 }
            } else {
                if (try? SyncResponse(binary: bytes)) != nil { decodedOK += 1 } else { failed += 1 }
            }
        }
        #expect(failed > 4000)
        #expect(decodedOK + failed == 6000)
    }

    @Test func hostileJSONGivesTypedErrors() {
        let bodies = [
            "", "{", "[]", "null", #"{"version":"one"}"#, #"{"cursor":{"seq":-1}}"#,
            String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000),
            #"{"version":1,"cursor":{"seq":0},"schemaHash":"","held":{"digest":"zz"},"ops":[],"auditEvents":[],"limit":1}"#,
        ]
        for body in bodies {
            do {
                _ = try MessageJSON.decode(SyncRequest.self, from: Data(body.utf8))
                Issue.record("decoded a hostile body")
            } catch {
                #expect(error.code == .malformed)
            }
        }
    }

    @Test func newerProtocolVersionIsRefusedClearly() {
        var request = SyncRequest(cursor: .start, schemaHash: "", held: HeldSet(segments: [], includeList: true))
        request.version = 99
        do {
            _ = try SyncRequest(binary: request.binaryEncoded())
            Issue.record("accepted a newer version")
        } catch {
            #expect(error.code == .unsupportedVersion)
            #expect(error.message.contains("Upgrade"))
        }
    }

    /// Version 1 wrote household references differently: reading one as
    /// version 2 would put ops into the wrong households. A version-2 device
    /// would apply its own writes onto snapshots that leave them out.
    @Test(arguments: [1, 2]) func olderProtocolVersionIsRefusedClearly(version: Int) {
        var request = SyncRequest(cursor: .start, schemaHash: "", held: HeldSet(segments: [], includeList: true))
        request.version = version
        do {
            _ = try SyncRequest(binary: request.binaryEncoded())
            Issue.record("accepted a version-\(version) message")
        } catch {
            #expect(error.code == .unsupportedVersion)
            #expect(error.message.contains("Upgrade"))
        }
    }

    @Test func unknownSectionsAreSkipped() throws {
        let request = SyncRequest(cursor: SyncCursor(seq: 5), schemaHash: "abc", held: HeldSet(segments: [], includeList: true))
        var bytes = request.binaryEncoded()
        bytes.append(contentsOf: [200, 3, 1, 2, 3])  // a section from a newer client
        let decoded = try SyncRequest(binary: bytes)
        #expect(decoded == request)
    }
}

/// Household IDs are written and parsed by hand (they name every audit row);
/// both must agree with Foundation's UUID text form exactly.
struct HouseholdIDTextTests {
    @Test func textFormMatchesFoundation() {
        var generator = SplitMix64(seed: 99)
        for _ in 0..<2_000 {
            let id = HouseholdID.random(using: &generator)
            #expect(id.description == id.uuid.uuidString.lowercased())
            #expect(HouseholdID(id.description) == id)
            #expect(HouseholdID(id.uuid.uuidString) == id, "uppercase parses too")
        }
        #expect(HouseholdID("00000000-0000-0000-0000-000000000000")?.description == "00000000-0000-0000-0000-000000000000")
        #expect(HouseholdID("ffffffff-ffff-ffff-ffff-ffffffffffff")?.description == "ffffffff-ffff-ffff-ffff-ffffffffffff")
    }

    @Test func malformedTextIsRefusedLikeFoundation() {
        let samples = ["", "x", "0123456789abcdef0123456789abcdef", "01234567-89ab-cdef-0123-456789abcdef0",
                       "01234567-89ab-cdef-0123-456789abcde", "01234567_89ab-cdef-0123-456789abcdef",
                       "0123456-789ab-cdef-0123-456789abcdef", "g1234567-89ab-cdef-0123-456789abcdef",
                       "01234567-89ab-cdef-0123-456789abcdéf",
                       "{01234567-89ab-cdef-0123-456789abcdef}", "01234567-89ab-cdef-0123-456789abcdef"]
        for text in samples {
            #expect((HouseholdID(text) == nil) == (UUID(uuidString: text) == nil), "\(text)")
        }
        // Stricter than Foundation on Linux, whose scanner skips leading blanks.
        #expect(HouseholdID(" 1234567-89ab-cdef-0123-456789abcdef") == nil)
    }
}

import Testing
@testable import SyncCore

/// The in-process server keeps a segment's verdicts in the segment's slot,
/// which exists before the segment does when the first ops for it are
/// refused. A verdict must outlive that, and such a slot is no segment.
struct InMemoryServerSlotTests {
    let h = Fixture.household
    let wgs = SegmentKey(household: Fixture.household, purpose: .wgs)

    func push(_ ops: [SyncOperation], to server: inout InMemorySyncServer, as device: DeviceIdentity) throws -> PushResult {
        let request = SyncRequest(cursor: .start, schemaHash: Fixture.schema.shortHash, held: HeldSet(segments: [], includeList: true),
                                  ops: ops, auditEvents: [], limit: 1 << 20, policyDigest: nil)
        var received = try SyncRequest(binary: request.binaryEncoded())
        return try server.push(&received, device: device, now: Fixture.t0 + 10_000)
    }

    @Test func verdictsRecordedBeforeASegmentExistsStayWithItOnceItDoes() throws {
        var world = try ReplicaTests().seededWorld()
        let device = world.devices["wmo"]!.1
        // The device believes in a WGS grant the server does not give: its write is refused,
        // for a segment the server has never held.
        world.devices["wmo"]!.0.policy.grants = [Grant(purpose: .wgs, access: .write)]
        var refused: SyncOperation?
        try world.edit("wmo") { r, wall in refused = try r.set(household: h, field: "wgs_notes", value: "Schulden in kaart (fictief)", wall: wall) }
        let first = try push([refused!], to: &world.server, as: device)
        #expect(first.rejected.map(\.reason) == [.purposeNotGranted])
        #expect(world.server.segment(wgs) == nil, "a refused op makes no segment")
        #expect(try world.server.existingSegments(of: [h]).map(\.segment).contains(wgs) == false)
        #expect(try world.server.storedVerdict(for: refused!.dot, segment: wgs, epoch: 0)?.rejection == .purposeNotGranted)

        // Granted now: the next op lands and makes the segment, beside the earlier verdict.
        world.server.policies["wendy"]!.grants = [Grant(purpose: .wgs, access: .write)]
        var later = refused!
        later.dot = Dot(replica: device.replica, counter: refused!.dot.counter + 1)
        later.context.raise(device.replica, to: refused!.dot.counter)
        later.payload = .set(field: "wgs_notes", value: "Budgetplan gemaakt (fictief)", resolves: [])
        let second = try push([later], to: &world.server, as: device)
        #expect(second.rejected.isEmpty && second.accepted.count == 1)
        #expect(world.server.segment(wgs)?.state.value(of: "wgs_notes") == "Budgetplan gemaakt (fictief)")
        #expect(try world.server.existingSegments(of: [h]).map(\.segment).contains(wgs))
        #expect(try world.server.highestRecordedCounter(of: device.replica, segment: wgs, epoch: 0) == later.dot.counter)

        // Sent again, each op gets its first verdict: the refusal is kept, the write not merged twice.
        let again = try push([refused!, later], to: &world.server, as: device)
        #expect(again.rejected.map(\.reason) == [.purposeNotGranted] && again.accepted.map(\.1) == [later.dot])
        #expect(again.newlyAcceptedCount == 0 && again.newlyRejected.isEmpty)
        #expect(world.server.segment(wgs)?.state.value(of: "wgs_notes") == "Budgetplan gemaakt (fictief)")
        // That push changed nothing, so the segment went back into its slot unchanged: with its verdicts.
        #expect(try world.server.storedVerdict(for: refused!.dot, segment: wgs, epoch: 0)?.rejection == .purposeNotGranted)
        #expect(try push([refused!], to: &world.server, as: device).rejected.map(\.reason) == [.purposeNotGranted])

        // Ops of two segments taking turns: each verdict lands in its own segment's slot.
        let regie = SegmentKey(household: h, purpose: .regie)
        var note: SyncOperation?
        try world.edit("wmo") { r, wall in
            note = try r.appendLog(household: h, purpose: .regie, kind: "telefoon", occurredAt: nil, text: "Gebeld (fictief)", wall: wall)
        }
        let mixed = try push([refused!, note!, later], to: &world.server, as: device)
        #expect(mixed.rejected.map(\.reason) == [.purposeNotGranted] && mixed.accepted.map(\.1) == [note!.dot, later.dot])
        let noteVerdict = try #require(try world.server.storedVerdict(for: note!.dot, segment: regie, epoch: 0))
        #expect(noteVerdict.rejection == nil)
        // Counters are per segment, so WGS may hold the same dot, but never the note's verdict.
        #expect(try world.server.storedVerdict(for: note!.dot, segment: wgs, epoch: 0)?.fingerprint != noteVerdict.fingerprint)
        #expect(try world.server.highestRecordedCounter(of: device.replica, segment: regie, epoch: 0) == note!.dot.counter)
        #expect(world.server.allSegments.filter { $0.state.key == wgs }.count == 1)

        // An erasure forgets the old epoch's verdicts with the segment.
        world.server.erase(wgs)
        #expect(world.server.segment(wgs) == nil)
        #expect(try world.server.storedVerdict(for: later.dot, segment: wgs, epoch: 0) == nil)
        #expect(try world.server.highestRecordedCounter(of: device.replica, segment: wgs, epoch: 0) == 0)

        // A slot holding only refused verdicts is erased the same way, and is still no segment.
        let jw = SegmentKey(household: h, purpose: .jw)
        var refusedJW = refused!
        refusedJW.segment = jw
        refusedJW.payload = .set(field: "jw_request", value: "Opvoedvragen (fictief)", resolves: [])
        #expect(try push([refusedJW], to: &world.server, as: device).rejected.count == 1)
        #expect(try world.server.storedVerdict(for: refusedJW.dot, segment: jw, epoch: 0) != nil)
        world.server.erase(jw)
        #expect(try world.server.storedVerdict(for: refusedJW.dot, segment: jw, epoch: 0) == nil)
        #expect(world.server.segment(jw) == nil && !world.server.allSegments.contains { $0.state.key == jw })
    }
}

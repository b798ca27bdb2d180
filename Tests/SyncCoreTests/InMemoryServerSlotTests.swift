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
        return try server.push(SyncRequest(binary: request.binaryEncoded()), device: device, now: Fixture.t0 + 10_000)
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

        // An erasure forgets the old epoch's verdicts with the segment.
        world.server.erase(wgs)
        #expect(world.server.segment(wgs) == nil)
        #expect(try world.server.storedVerdict(for: later.dot, segment: wgs, epoch: 0) == nil)
        #expect(try world.server.highestRecordedCounter(of: device.replica, segment: wgs, epoch: 0) == 0)
    }
}

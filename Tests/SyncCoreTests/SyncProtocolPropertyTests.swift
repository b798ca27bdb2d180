import Foundation
import Testing
@testable import SyncCore

/// The whole sync protocol under seeded, collision-heavy schedules: three
/// devices edit one plan offline (fields rewritten many times, so drafts are
/// absorbed; log entries; goals inserted and removed) and sync in every way a
/// real one can: whole, in small chunks, with the response lost on the way
/// back (the next push repeats it with as many ops or more, absorbing drafts
/// differently; a smaller repeat fails the state check by design, see
/// ClientReplica.apply step 6), and after losing their copy
/// of the plan while still writing to it (the snapshot leaves their own
/// writes out). Every message goes through the binary codec. No state check
/// may ever fail (a failure would heal by re-fetching, which would hide a
/// protocol bug); at the end every copy must be byte-identical to the
/// server's, nothing may be pending or refused, and every log entry any
/// device wrote must be on the server.
struct SyncProtocolPropertyTests {
    let h = Fixture.household
    let regie = SegmentKey(household: Fixture.household, purpose: .regie)
    let fields = ["area", "agreements", "next_evaluation_date"]

    struct Device {
        var replica: ClientReplica
        let identity: DeviceIdentity
    }

    @Test(arguments: 0..<40)
    func everyScheduleConverges(seed: Int) throws {
        var rng = SplitMix64(seed: UInt64(seed) &* 0x9E37_79B9 &+ 7)
        var server = InMemorySyncServer(schema: Fixture.schema)
        var clock = Fixture.t0
        var devices: [Device] = []
        for (index, user) in ["anna", "bram", "cees"].enumerated() {
            server.policies[user] = Fixture.context(user: user, role: "buurtcoach")
            let replica = ClientReplica(replica: ReplicaID(UInt32(20 + index)), user: user, schema: Fixture.schema,
                                        policy: server.policies[user]!)
            devices.append(Device(replica: replica, identity: DeviceIdentity(replica: replica.replica, user: user, deviceID: user)))
        }
        _ = try devices[0].replica.createHousehold(id: h, label: "Fam. Eigenschap (fictief)", wall: clock)
        try roundTrip(&devices[0], &server, clock: clock)
        var written: Set<String> = []
        var failedChecks = 0
        var unanswered = [0, 0, 0]

        for step in 0..<160 {
            clock += UInt64.random(in: 1...3_000, using: &rng)
            let d = Int.random(in: 0..<devices.count, using: &rng)
            guard devices[d].replica.view(regie) != nil else {
                failedChecks += try roundTrip(&devices[d], &server, clock: clock).resnapshots.count
                unanswered[d] = 0
                continue
            }
            switch Int.random(in: 0..<100, using: &rng) {
            case 0..<35:
                // Few fields, many writes: drafts and concurrent writes collide.
                let field = fields[Int.random(in: 0..<fields.count, using: &rng)]
                let value = field == "next_evaluation_date" ? "2027-0\(Int.random(in: 1...9, using: &rng))-1\(step % 10)" : "w\(seed).\(step)"
                try devices[d].replica.set(household: h, field: field, value: value, wall: clock)
            case 35..<50:
                let text = "log \(seed).\(step) by \(d)"
                try devices[d].replica.appendLog(household: h, purpose: .regie, kind: "telefoon", occurredAt: nil, text: text, wall: clock)
                written.insert(text)
            case 50..<60:
                let live = devices[d].replica.view(regie)?.collections["doelen"]?.liveCount ?? 0
                try devices[d].replica.insertItem(household: h, purpose: .regie, at: Int.random(in: 0...live, using: &rng),
                                                  text: "doel \(step)", wall: clock)
            case 60..<65:
                // Goals edited here and removed there: conflicts that arrive in deltas. (Not a goal
                // a damaged copy shows from a pending edit alone: without its insert it has no place.)
                if let items = devices[d].replica.view(regie)?.collections["doelen"]?.liveItems.filter({ $0.basePosition != nil }),
                   !items.isEmpty {
                    let item = items[Int.random(in: 0..<items.count, using: &rng)]
                    if Bool.random(using: &rng) {
                        try devices[d].replica.removeItem(household: h, purpose: .regie, item: item.id, wall: clock)
                    } else {
                        try devices[d].replica.editItem(household: h, purpose: .regie, item: item.id, field: .text,
                                                        value: "doel \(step) bewerkt", wall: clock)
                    }
                }
            case 65..<78:
                failedChecks += try roundTrip(&devices[d], &server, clock: clock).resnapshots.count
                unanswered[d] = 0
            case 78..<86:
                // As the CLI does, a push after a lost answer takes at least the ops it took then.
                let maxOps = max(Int.random(in: 1...4, using: &rng), unanswered[d])
                failedChecks += try roundTrip(&devices[d], &server, clock: clock, maxOps: maxOps).resnapshots.count
                unanswered[d] = 0
            case 86..<94:
                // The response is lost: the server has the ops, the device does not know.
                let maxOps = max(Int.random(in: 1...6, using: &rng), unanswered[d])
                let request = devices[d].replica.makeRequest(maxOps: maxOps)
                _ = try server.sync(SyncRequest(binary: request.binaryEncoded()), device: devices[d].identity, now: clock)
                unanswered[d] = maxOps
            default:
                // A damaged store: the copy is gone, the pending work is not.
                devices[d].replica.confirmed[regie] = nil
                devices[d].replica.sendFullHeld = true
                devices[d].replica.dropViews(of: [regie])
            }
        }

        for _ in 0..<2 {
            for d in devices.indices {
                for _ in 0..<30 {
                    clock += 1_000
                    let outcome = try roundTrip(&devices[d], &server, clock: clock)
                    failedChecks += outcome.resnapshots.count
                    if !outcome.needsAnotherRound && devices[d].replica.pending.isEmpty { break }
                }
            }
        }
        #expect(failedChecks == 0, "seed \(seed): \(failedChecks) state checks failed")
        let serverBytes = try #require(server.segment(regie)?.state.canonicalBytes())
        for device in devices {
            #expect(device.replica.pending.isEmpty, "seed \(seed): \(device.identity.user) has pending ops")
            #expect(device.replica.rejected.isEmpty, "seed \(seed): \(device.identity.user) has refused ops")
            #expect(device.replica.confirmed[regie]?.canonicalBytes() == serverBytes, "seed \(seed): \(device.identity.user) diverged")
        }
        let onServer = Set(server.segment(regie)?.state.logs["contactlog"]?.entries.map(\.body.text) ?? [])
        #expect(written.isSubset(of: onServer), "seed \(seed): lost log entries \(written.subtracting(onServer))")
    }

    /// One round trip through the codec, applied to the device.
    @discardableResult
    func roundTrip(_ device: inout Device, _ server: inout InMemorySyncServer, clock: UInt64,
                   maxOps: Int = .max) throws -> ClientReplica.SyncOutcome {
        let request = device.replica.makeRequest(maxOps: maxOps)
        let received = try SyncRequest(binary: request.binaryEncoded())
        let response = try server.sync(received, device: device.identity, now: clock)
        // New conflicts are counted over the segments the response names (the CLI's exit 4):
        // the count must equal a scan of every segment the device shows, before and after.
        let shownBefore = Set(device.replica.visibleSegments)
        let before = device.replica.conflictKeys(in: shownBefore)
        let outcome = device.replica.apply(try SyncResponse(binary: response.binaryEncoded()), wall: clock)
        let after = device.replica.conflictKeys(in: shownBefore.union(device.replica.visibleSegments))
        #expect(outcome.newConflicts == after.subtracting(before).count, "new conflicts miscounted")
        return outcome
    }
}

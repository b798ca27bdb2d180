import Foundation
import Testing
@testable import SyncCore

/// Dots are unique per segment *and epoch*: after an erasure one segment can
/// see the same dot twice, once refused for the old epoch and once written
/// for the new one. Nothing written for the new epoch may be lost to that.
struct ErasureEpochTests {
    typealias World = ReplicaTests.World
    let h = Fixture.household
    let wmo = SegmentKey(household: Fixture.household, purpose: .wmo)

    func logTexts(_ state: SegmentState?) -> [String] {
        (state?.logs["contactlog"]?.ordered ?? []).map(\.body.text)
    }

    /// The coach may write WMO on both sides (so the segment exists again at the new epoch).
    func grantCoachWMO(_ world: inout World) {
        world.server.policies["bas"]!.grants = [Grant(purpose: .wmo, access: .write)]
        world.devices["coach"]!.0.policy.grants = [Grant(purpose: .wmo, access: .write)]
    }

    @Test func writesAfterAnErasureReuseNoDotOfTheRefusedOldEpochOps() throws {
        var world = try ReplicaTests().seededWorld()
        grantCoachWMO(&world)
        // Wendy holds WMO at epoch 0 and writes three entries offline.
        try world.edit("wmo") { r, wall in
            for i in 1...3 { try r.appendLog(household: h, purpose: .wmo, kind: "huisbezoek", occurredAt: nil, text: "Oud \(i)", wall: wall) }
        }
        world.server.erase(wmo)
        // A colleague starts the segment again at epoch 1.
        try world.edit("coach") { r, wall in try r.set(household: h, field: "wmo_request", value: "Nieuwe aanvraag", wall: wall) }
        try world.sync("coach")
        #expect(world.server.segment(wmo)?.state.epoch == 1)

        // Wendy's old-epoch entries are refused 'erased'; then she writes five new ones.
        let refused = try world.sync("wmo")
        #expect(refused.flatMap(\.rejected).filter { $0.reason == .erased }.count == 3)
        try world.edit("wmo") { r, wall in
            for i in 1...5 { try r.appendLog(household: h, purpose: .wmo, kind: "telefoon", occurredAt: nil, text: "Nieuw \(i)", wall: wall) }
        }
        let outcomes = try world.sync("wmo")
        #expect(outcomes.flatMap(\.rejected).isEmpty)
        #expect(world.replica("wmo").pending.isEmpty)
        let expected = (1...5).map { "Nieuw \($0)" }
        #expect(logTexts(world.server.segment(wmo)?.state).sorted() == expected, "every new-epoch write reached the server")
        #expect(logTexts(world.replica("wmo").confirmed[wmo]).sorted() == expected)
        do { let same = world.identical("wmo"); #expect(same) }
    }

    /// A view the device built of a segment it does not hold follows an erasure
    /// that a sync reports, even when that sync carried none of the segment's ops:
    /// the ops of the old epoch no longer show.
    @Test func aKeptViewOfAnErasedSegmentIsDroppedWhenTheEpochRises() throws {
        var world = try ReplicaTests().seededWorld()
        grantCoachWMO(&world)
        try world.edit("coach") { r, wall in
            try r.appendLog(household: h, purpose: .regie, kind: "telefoon", occurredAt: nil, text: "Gebeld (fictief)", wall: wall)
            try r.insertItem(household: h, purpose: .wmo, text: "Boodschappen (fictief)", wall: wall + 1)
            try r.insertItem(household: h, purpose: .wmo, text: "Traplift (fictief)", wall: wall + 2)  // reads the goals: builds the view
        }
        #expect(world.replica("coach").overlays[wmo] != nil)
        world.server.erase(wmo)
        // One op per push, one round: the answer takes the contact-log entry and reports WMO's new epoch.
        try world.sync("coach", maxOps: 1, rounds: 1)
        var coach = world.replica("coach")
        #expect(coach.epochs[wmo] == 1)
        #expect(coach.liveCount(of: "doelen", in: wmo) == 0, "the old epoch's goals no longer show")
        #expect(coach.view(wmo) == coach.makeView(wmo))
    }

    @Test func aRefusalInOneSegmentLeavesTheSameDotInAnotherSegmentQueued() throws {
        var world = try ReplicaTests().seededWorld()
        // Wendy's device still believes in a WGS grant the server no longer has.
        world.devices["wmo"]!.0.policy.grants = [Grant(purpose: .wgs, access: .write)]
        var wgsOp: SyncOperation?
        var regieOp: SyncOperation?
        try world.edit("wmo") { r, wall in
            wgsOp = try r.set(household: h, field: "wgs_notes", value: "Schulden in kaart", wall: wall)
            regieOp = try r.appendLog(household: h, purpose: .regie, kind: "telefoon", occurredAt: nil, text: "Afspraak gemaakt", wall: wall)
        }
        #expect(wgsOp?.dot == regieOp?.dot, "the two ops share a dot (counters are per segment)")
        // One op per round trip: the WGS refusal arrives while the REGIE op is still unsent.
        let outcomes = try world.sync("wmo", maxOps: 1, rounds: 4)
        let rejected = outcomes.flatMap(\.rejected)
        #expect(rejected.count == 1 && rejected.first?.op.segment.purpose == .wgs && rejected.first?.reason == .purposeNotGranted)
        let regie = SegmentKey(household: h, purpose: .regie)
        #expect(logTexts(world.server.segment(regie)?.state) == ["Afspraak gemaakt"])
        #expect(world.replica("wmo").pending.isEmpty)
        #expect(world.replica("wmo").rejected.map(\.op.segment.purpose) == [.wgs])
    }

    /// Offline work for an erased segment that policy no longer lets the
    /// worker write again stays visible as rejected; nothing is dropped.
    @Test func offlineWorkThatCannotBeRebasedIsKeptAsRejected() throws {
        var world = try ReplicaTests().seededWorld()
        grantCoachWMO(&world)
        try world.edit("coach") { r, wall in
            let goal = try r.insertItem(household: h, purpose: .wmo, text: "Zelf boodschappen doen", wall: wall)
            try r.editItem(household: h, purpose: .wmo, item: goal.dot, field: .status, value: "done", wall: wall)
            try r.appendLog(household: h, purpose: .wmo, kind: "huisbezoek", occurredAt: nil, text: "Eerste bezoek", wall: wall)
        }
        world.server.erase(wmo)
        // The grant becomes read-only on the server before the coach's device hears of it.
        world.server.policies["bas"]!.grants = [Grant(purpose: .wmo, access: .read)]
        let written = world.replica("coach").pending.count
        try world.sync("coach")
        let coach = world.replica("coach")
        #expect(coach.pending.isEmpty)
        #expect(coach.purgedRejectedCount == 0, "nothing was dropped")
        #expect(coach.rejected.count == written, "every offline op is listed as rejected")
        #expect(Set(coach.rejected.map(\.reason)).isSubset(of: [.readOnly, .dependsOnRejected]), "\(coach.rejected.map(\.reason))")
    }

    @Test func offlineGoalWorkForAnErasedSegmentIsRebasedWithItsEdits() throws {
        var world = try ReplicaTests().seededWorld()
        world.server.erase(wmo)
        grantCoachWMO(&world)
        // Offline, unaware of the erasure: add a goal, mark it done, correct nothing else.
        try world.edit("coach") { r, wall in
            let goal = try r.insertItem(household: h, purpose: .wmo, text: "Zelf boodschappen doen", wall: wall)
            try r.editItem(household: h, purpose: .wmo, item: goal.dot, field: .status, value: "done", wall: wall)
            let entry = try r.appendLog(household: h, purpose: .wmo, kind: "huisbezoek", occurredAt: nil, text: "Eerste versie", wall: wall)
            try r.appendLog(household: h, purpose: .wmo, kind: "huisbezoek", occurredAt: nil, text: "Verbeterde versie",
                            correctionOf: entry.dot, wall: wall)
        }
        #expect(world.replica("coach").pending.allSatisfy { $0.epoch == 0 })
        try world.sync("coach")
        let coach = world.replica("coach")
        #expect(coach.pending.isEmpty)
        #expect(coach.rejected.isEmpty)
        #expect(coach.purgedRejectedCount == 0, "nothing was dropped")
        let server = try #require(world.server.segment(wmo)?.state)
        #expect(server.epoch == 1)
        let goals = server.collections["doelen"]?.items.filter(\.isLive) ?? []
        #expect(goals.map { $0.text.winner?.value } == ["Zelf boodschappen doen"])
        #expect(goals.first?.status.winner?.value == "done", "the edit followed its rebased goal")
        let entries = server.logs["contactlog"]?.ordered ?? []
        #expect(entries.count == 2)
        #expect(entries.last?.body.correctionOf == entries.first?.dot, "the correction points at the rebased entry")
        do { let same = world.identical("coach"); #expect(same) }
    }

    @Test func anErasureIsDisclosedOnlyToUsersWhoMayUseThePurpose() throws {
        var world = try ReplicaTests().seededWorld()
        world.server.erase(wmo)
        let coach = world.devices["coach"]!
        let response = try world.server.sync(coach.0.makeRequest(), device: coach.1, now: world.clock + 1000)
        #expect(!response.epochs.contains { $0.segment == wmo }, "a buurtcoach without WMO does not learn that WMO was erased")
        #expect(!response.purge.contains { $0.segment == wmo })

        // Granted WMO (but never having held it): told the epoch, and no purge for what it never had.
        grantCoachWMO(&world)
        var request = world.devices["coach"]!.0.makeRequest()
        request.held = HeldSet(digest: Digest(Array(repeating: 0, count: 16)), segments: nil)  // forces the "send your list" path
        let granted = try world.server.sync(request, device: coach.1, now: world.clock + 2000)
        #expect(granted.epochs.contains { $0.segment == wmo && $0.epoch == 1 })
        #expect(!granted.purge.contains { $0.segment == wmo })
    }
}

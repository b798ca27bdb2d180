import Foundation
import Testing
@testable import SyncCore

/// A replica restored from an older copy of itself (a backup of the laptop's home): the server has
/// dots of it that it never saw. It fetches every segment again whole and shows what it had
/// meanwhile; a segment it may no longer read is purged once the server has sent everything.
struct RestoredReplicaTests {
    typealias World = ReplicaTests.World
    let h = Fixture.household
    let regie = SegmentKey(household: Fixture.household, purpose: .regie)
    let wmo = SegmentKey(household: Fixture.household, purpose: .wmo)

    func logTexts(_ state: SegmentState?) -> [String] {
        (state?.logs["contactlog"]?.ordered ?? []).map(\.body.text)
    }

    @Test func aRestoredReplicaFetchesEverythingAgainAndPurgesWhatItMayNoLongerRead() throws {
        var world = try ReplicaTests().seededWorld()
        world.server.policies["bas"]!.grants = [Grant(purpose: .wmo, access: .read)]
        world.devices["coach"]!.0.policy.grants = [Grant(purpose: .wmo, access: .read)]
        try world.sync("coach")
        #expect(world.replica("coach").confirmed[wmo] != nil, "positive control: the coach holds WMO")
        let backup = world.replica("coach")

        try world.edit("coach") { r, wall in
            try r.appendLog(household: h, purpose: .regie, kind: "telefoon", occurredAt: nil, text: "Na de back-up (fictief)", wall: wall)
        }
        try world.sync("coach")
        world.devices["coach"]!.0 = backup  // the home is restored from the backup
        try world.edit("coach") { r, wall in
            try r.appendLog(household: h, purpose: .regie, kind: "huisbezoek", occurredAt: nil, text: "Na het terugzetten (fictief)", wall: wall)
        }

        let first = try world.sync("coach", rounds: 1)
        #expect(first.first?.restored == true)
        #expect(world.replica("coach").refreshing.contains(wmo), "every held segment is fetched again")
        #expect(world.replica("coach").confirmed[wmo] != nil, "and still shown meanwhile")
        // The grant ends before the refetch: the server no longer sends WMO, and was not told it is held.
        world.server.policies["bas"]!.grants = []
        try world.sync("coach")

        let coach = world.replica("coach")
        #expect(coach.refreshing.isEmpty)
        #expect(coach.confirmed[wmo] == nil, "a segment the server did not send again is purged")
        let shown = logTexts(coach.confirmed[regie])
        #expect(shown.contains("Na de back-up (fictief)"), "what the device sent after the backup is back")
        #expect(coach.rejected.contains { $0.reason == .dotReuse && $0.op.payload.writtenText == "Na het terugzetten (fictief)" })
        do { let same = world.identical("coach"); #expect(same) }

        // New writes take dots past everything the server has of this device.
        try world.edit("coach") { r, wall in
            try r.appendLog(household: h, purpose: .regie, kind: "telefoon", occurredAt: nil, text: "Weer gewoon (fictief)", wall: wall)
        }
        let after = try world.sync("coach")
        #expect(after.flatMap(\.rejected).isEmpty)
        let onServer = logTexts(world.server.segment(regie)?.state)
        #expect(onServer.contains("Weer gewoon (fictief)"))
    }

    /// A segment erased while the refetch is under way, and started again by this device's own
    /// write, is held as the server knows it: the end of the refetch does not purge it.
    @Test func aSegmentThePushMakesAgainDuringTheRefetchIsKept() throws {
        var world = try ReplicaTests().seededWorld()
        world.server.policies["bas"]!.grants = [Grant(purpose: .wmo, access: .write)]
        world.devices["coach"]!.0.policy.grants = [Grant(purpose: .wmo, access: .write)]
        try world.edit("coach") { r, wall in  // a third segment, so that the refetch takes pages
            try r.appendLog(household: h, purpose: .informeel, kind: "telefoon", occurredAt: nil, text: "Informeel (fictief)", wall: wall)
        }
        try world.sync("coach")
        let backup = world.replica("coach")
        try world.edit("coach") { r, wall in
            try r.appendLog(household: h, purpose: .regie, kind: "telefoon", occurredAt: nil, text: "Na de back-up (fictief)", wall: wall)
        }
        try world.sync("coach")
        world.devices["coach"]!.0 = backup
        try world.edit("coach") { r, wall in
            try r.appendLog(household: h, purpose: .regie, kind: "huisbezoek", occurredAt: nil, text: "Na het terugzetten (fictief)", wall: wall)
        }
        try world.sync("coach", rounds: 1)
        #expect(world.replica("coach").refreshing.contains(wmo))

        world.server.erase(wmo)
        try world.sync("coach", limit: 1, rounds: 1)  // one page of the refetch, which the erasure's purge rides on
        #expect(world.replica("coach").confirmed[wmo] == nil)
        #expect(!world.replica("coach").refreshing.isEmpty, "the refetch is not done")
        try world.edit("coach") { r, wall in
            try r.set(household: h, field: "wmo_request", value: "Nieuwe aanvraag (fictief)", wall: wall)
        }
        try world.sync("coach")
        let coach = world.replica("coach")
        #expect(coach.refreshing.isEmpty)
        #expect(coach.confirmed[wmo]?.fields["wmo_request"]?.winner?.value == "Nieuwe aanvraag (fictief)", "the new write stays shown")
        do { let same = world.identical("coach"); #expect(same) }
    }
}

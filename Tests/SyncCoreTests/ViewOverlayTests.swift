import Foundation
import Testing
@testable import SyncCore

/// A device's view (confirmed + pending) adds log entries and changes items
/// on top of the confirmed state instead of copying it (AppendLog,
/// ItemCollection): the view must still show everything, and the confirmed
/// state must not change until the server accepts.
struct ViewOverlayTests {
    let h = Fixture.household

    @Test func aViewShowsPendingLogEntriesAndGoalsOnTopOfTheConfirmedOnes() throws {
        var world = try ReplicaTests().seededWorld()
        let regie = SegmentKey(household: h, purpose: .regie)
        var confirmedGoal = Dot(replica: ReplicaID(11), counter: 1)
        try world.edit("coach") { r, wall in
            _ = try r.appendLog(household: h, purpose: .regie, kind: "telefoon", occurredAt: nil, text: "Eerste gesprek (fictief)", wall: wall)
            confirmedGoal = try r.insertItem(household: h, purpose: .regie, text: "Post openen", wall: wall).dot
        }
        try world.sync("coach")
        let before = try #require(world.replica("coach").confirmed[regie])

        // Offline: two more entries (one corrects the first), a new goal, the old goal marked done.
        var added: [Dot] = []
        var newGoal = confirmedGoal
        try world.edit("coach") { r, wall in
            let first = try #require(r.view(regie)?.logs["contactlog"]?.entries.first)
            added.append(try r.appendLog(household: h, purpose: .regie, kind: "huisbezoek", occurredAt: nil, text: "Huisbezoek (fictief)", wall: wall).dot)
            added.append(try r.appendLog(household: h, purpose: .regie, kind: "telefoon", occurredAt: nil, text: "Correctie (fictief)",
                                         correctionOf: first.dot, wall: wall + 1).dot)
            newGoal = try r.insertItem(household: h, purpose: .regie, text: "Schuldhulp aanvragen", wall: wall + 2).dot
            _ = try r.editItem(household: h, purpose: .regie, item: confirmedGoal, field: .status, value: "done", wall: wall + 3)
        }
        var replica = world.replica("coach")  // var: the live order reads through the lent view
        let view = try #require(replica.view(regie))
        let log = try #require(view.logs["contactlog"])
        #expect(log.count == 3)
        #expect(log.entries.map(\.dot) == log.entries.map(\.dot).sorted(), "entries stay sorted by dot")
        for dot in added { #expect(log[dot: dot] != nil) }
        #expect(log.entries.last?.body.correctionOf == before.logs["contactlog"]?.entries.first?.dot)
        let goals = try #require(view.collections["doelen"])
        #expect(goals.liveCount == 2)
        #expect(goals[confirmedGoal]?.status.winner?.value == "done")
        #expect(goals[newGoal]?.text.winner?.value == "Schuldhulp aanvragen")
        #expect(goals.liveItems.count == 2 && goals.items.count == 2)
        // The replica's count (what the replay clamps an insert's index by) is the live order's
        // length, also with a goal removed on top: it is still an item, but no longer live.
        #expect(replica.liveCount(of: "doelen", in: regie) == 2)
        #expect(replica.liveOrder(of: "doelen", in: regie).map(\.id).sorted() == [confirmedGoal, newGoal].sorted())
        // The live order reads each item's key through a pointer, field by field: the same key as the item's own,
        // for the confirmed goal and for the one on top.
        for place in replica.liveOrder(of: "doelen", in: regie) { #expect(place.sortKey == goals[place.id]?.sortKey) }
        #expect(replica.liveCount(of: "nietbestaand", in: regie) == 0)
        var removing = replica
        _ = try removing.removeItem(household: h, purpose: .regie, item: confirmedGoal, wall: Fixture.t0 + 10_000)
        #expect(removing.view(regie)?.collections["doelen"]?.items.count == 2)
        #expect(removing.liveCount(of: "doelen", in: regie) == 1)
        #expect(removing.liveOrder(of: "doelen", in: regie).map(\.id) == [newGoal])
        // The confirmed state is what the server acknowledged, untouched by the view.
        #expect(replica.confirmed[regie] == before)
        #expect(replica.confirmed[regie]?.logs["contactlog"]?.count == 1)
        #expect(replica.confirmed[regie]?.collections["doelen"]?[confirmedGoal]?.status.winner == nil)

        // After the sync the confirmed state holds it all, byte-identical to the server's.
        try world.sync("coach")
        let synced = world.replica("coach")
        #expect(synced.pending.isEmpty)
        #expect(synced.confirmed[regie]?.logs["contactlog"]?.count == 3)
        #expect(synced.confirmed[regie]?.collections["doelen"]?.liveCount == 2)
        #expect(synced.view(regie) == synced.confirmed[regie])
        let same = world.identical("coach")
        #expect(same)
    }

    @Test func aSyncThatLeavesOpsPendingKeepsThemInTheViewBesideOthersWrites() throws {
        var world = try ReplicaTests().seededWorld()
        let regie = SegmentKey(household: h, purpose: .regie)
        try world.edit("coach") { r, wall in
            for n in 1...3 { _ = try r.appendLog(household: h, purpose: .regie, kind: "telefoon", occurredAt: nil, text: "Notitie \(n) (fictief)", wall: wall + UInt64(n)) }
        }
        try world.edit("wmo") { r, wall in
            _ = try r.appendLog(household: h, purpose: .regie, kind: "overleg", occurredAt: nil, text: "Overleg (fictief)", wall: wall)
        }
        try world.sync("wmo")
        // One op per push and one round: the answer brings the colleague's entry and acknowledges one of three.
        try world.sync("coach", maxOps: 1, rounds: 1)
        let replica = world.replica("coach")
        #expect(replica.pending.count == 2)
        #expect(replica.confirmed[regie]?.logs["contactlog"]?.count == 2, "the colleague's entry and the acknowledged one")
        let view = try #require(replica.view(regie)?.logs["contactlog"])
        #expect(view.count == 4)
        #expect(Set(view.entries.map(\.body.text)) == ["Notitie 1 (fictief)", "Notitie 2 (fictief)", "Notitie 3 (fictief)", "Overleg (fictief)"])
        try world.sync("coach")
        #expect(world.replica("coach").confirmed[regie]?.logs["contactlog"]?.count == 4)
        let same = world.identical("coach")
        #expect(same)
    }

    /// A write without a view only queues its op; the view is built when
    /// first read and kept for the writes after it, and every read shows the
    /// pending ops, built or not.
    @Test func aViewIsBuiltWhenFirstReadAndShowsEveryPendingWrite() throws {
        var world = try ReplicaTests().seededWorld()
        let regie = SegmentKey(household: h, purpose: .regie), wmo = SegmentKey(household: h, purpose: .wmo)
        try world.edit("wmo") { r, wall in
            _ = try r.appendLog(household: h, purpose: .regie, kind: "telefoon", occurredAt: nil, text: "Gebeld (fictief)", wall: wall)
            _ = try r.set(household: h, field: "wmo_request", value: "Hulp bij de was (fictief)", wall: wall + 1)
        }
        var replica = world.replica("wmo")
        #expect(replica.overlays.isEmpty && replica.unviewed == [regie, wmo], "the writes built no view")
        #expect(replica.view(wmo)?.value(of: "wmo_request") == "Hulp bij de was (fictief)")
        #expect(replica.view(regie)?.logs["contactlog"]?.entries.map(\.body.text).contains("Gebeld (fictief)") == true)
        #expect(replica.visibleSegments.contains(wmo))
        #expect(replica.confirmed[wmo]?.value(of: "wmo_request") != "Hulp bij de was (fictief)", "the confirmed state waits for the server")
        // Read in place (the live order a goal's place comes from): built now, and kept.
        #expect(replica.liveCount(of: "doelen", in: regie) == 0)
        #expect(replica.overlays[regie] != nil && replica.unviewed == [wmo])
        // A goal and its removal: the removal is checked on the view, which the insert went into.
        let goal = try replica.insertItem(household: h, purpose: .regie, text: "Fietsen leren (fictief)", wall: Fixture.t0 + 5_000).dot
        _ = try replica.removeItem(household: h, purpose: .regie, item: goal, wall: Fixture.t0 + 5_001)
        #expect(replica.liveCount(of: "doelen", in: regie) == 0)
        #expect(replica.view(regie) == replica.makeView(regie), "the kept view is what the confirmed state and the pending ops make")
        world.devices["wmo"]!.0 = replica
        try world.sync("wmo")
        let synced = world.replica("wmo")
        #expect(synced.pending.isEmpty && synced.overlays.isEmpty && synced.unviewed.isEmpty)
        #expect(synced.view(wmo)?.value(of: "wmo_request") == "Hulp bij de was (fictief)")
        let same = world.identical("wmo")
        #expect(same)
    }

    @Test func aCorrectionOfCounterZeroIsNoCorrection() throws {
        let zero = LogEntryBody(kind: "telefoon", occurredAt: 1, text: "x", correctionOf: Dot(replica: ReplicaID(3), counter: 0))
        let none = LogEntryBody(kind: "telefoon", occurredAt: 1, text: "x")
        #expect(zero == none && zero.hashValue == none.hashValue && zero.correctionOf == nil)
        var world = try ReplicaTests().seededWorld()
        do {
            try world.edit("coach") { r, wall in
                _ = try r.appendLog(household: h, purpose: .regie, kind: "telefoon", occurredAt: nil, text: "Correctie (fictief)",
                                    correctionOf: Dot(replica: ReplicaID(11), counter: 0), wall: wall)
            }
            Issue.record("a correction of entry 11.0 must be refused")
        } catch let error as SyncCoreError {
            #expect(error.code == .notFound)
        }
        #expect(world.replica("coach").pending.isEmpty, "nothing was queued")
    }

    @Test func logsAndCollectionsAreEqualHoweverTheyAreSplit() throws {
        func entry(_ counter: UInt64) -> LogEntry {
            LogEntry(dot: Dot(replica: ReplicaID(3), counter: counter), stamp: HLCTimestamp(rawValue: counter << 16), author: "bas",
                     body: LogEntryBody(kind: "telefoon", occurredAt: counter, text: "Notitie \(counter) (fictief)"))
        }
        var plain = AppendLog()
        for c: UInt64 in [1, 3, 2] { plain.add(entry(c)) }
        var split = AppendLog()
        split.add(entry(2))
        let addedThree = split.addOnTop(entry(3)), addedOne = split.addOnTop(entry(1))
        #expect(addedThree && addedOne)
        let sharedAgain = split.addOnTop(entry(2))
        #expect(!sharedAgain, "an entry the shared part has is not added again")
        let onTopAgain = split.add(entry(3))
        #expect(!onTopAgain, "nor one on top")
        let addedFour = split.add(entry(4)) && plain.add(entry(4))
        #expect(addedFour)
        #expect(split == plain && split.hashValue == plain.hashValue)
        #expect(split.entries.map(\.dot.counter) == [1, 2, 3, 4] && split.count == 4)

        func item(_ counter: UInt64, status: String? = nil) -> CollectionItem {
            var item = CollectionItem(id: Dot(replica: ReplicaID(3), counter: counter), basePosition: [UInt8(counter)])
            item.applyText(RegisterValue(dot: item.id, stamp: HLCTimestamp(rawValue: counter << 16), author: "bas", value: "Doel \(counter)"),
                           context: VersionVector())
            if let status {
                item.applyStatus(RegisterValue(dot: Dot(replica: ReplicaID(4), counter: counter), stamp: HLCTimestamp(rawValue: counter << 17),
                                               author: "wendy", value: status), context: VersionVector())
            }
            return item
        }
        var flat = ItemCollection()
        for c: UInt64 in [1, 2, 3] { flat[item(c).id] = item(c) }
        flat[item(2).id] = item(2, status: "done")
        var layered = ItemCollection()
        layered[item(1).id] = item(1)
        layered[item(2).id] = item(2)
        layered.setOnTop(item(3))
        layered.setOnTop(item(2, status: "done"))
        #expect(layered == flat && layered.hashValue == flat.hashValue)
        #expect(layered[item(2).id]?.status.winner?.value == "done", "the item on top hides its shared copy")
        #expect(layered.items.count == 3 && layered.liveCount == 3)
        // A plain write to a layered collection keeps every item.
        layered[item(4).id] = item(4)
        flat[item(4).id] = item(4)
        #expect(layered == flat && layered.items.map(\.id.counter) == [1, 2, 3, 4])
    }

    @Test func aCorrectionOfCounterZeroIsRefusedInJSON() throws {
        let valid = #"{"kind":"telefoon","occurredAt":5,"text":"x","correctionOf":{"replica":3,"counter":2}}"#
        let decoded = try JSONDecoder().decode(LogEntryBody.self, from: Data(valid.utf8))
        #expect(decoded.correctionOf == Dot(replica: ReplicaID(3), counter: 2))
        let none = try JSONDecoder().decode(LogEntryBody.self, from: Data(#"{"kind":"telefoon","occurredAt":5,"text":"x"}"#.utf8))
        #expect(none.correctionOf == nil)
        #expect(try JSONDecoder().decode(LogEntryBody.self, from: JSONEncoder().encode(decoded)) == decoded)
        let zero = #"{"kind":"telefoon","occurredAt":5,"text":"x","correctionOf":{"replica":3,"counter":0}}"#
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(LogEntryBody.self, from: Data(zero.utf8)) }
    }
}

import Foundation
import Testing
@testable import SyncCore

/// The client replica against the in-memory reference server, with every
/// message going through the binary codec (DESIGN §3.1, §5).
struct ReplicaTests {
    let h = Fixture.household
    let now = Fixture.t0

    struct World {
        var server = InMemorySyncServer(schema: Fixture.schema)
        var devices: [String: (ClientReplica, DeviceIdentity)] = [:]
        var clock: UInt64 = Fixture.t0

        mutating func addDevice(_ name: String, user: String, role: String, replica: UInt32, households: [HouseholdID]) {
            server.policies[user] = Fixture.context(user: user, role: role, households: households)
            let replica = ClientReplica(replica: ReplicaID(replica), user: user, schema: Fixture.schema,
                                        policy: server.policies[user]!)
            devices[name] = (replica, DeviceIdentity(replica: replica.replica, user: user, deviceID: name))
        }

        /// Round trips until the server has nothing more; returns the outcomes.
        @discardableResult
        mutating func sync(_ name: String, maxOps: Int = .max, limit: Int = 4 << 20, rounds: Int = 20) throws -> [ClientReplica.SyncOutcome] {
            var (replica, device) = devices[name]!
            var outcomes: [ClientReplica.SyncOutcome] = []
            for _ in 0..<rounds {
                clock += 1000
                let request = replica.makeRequest(maxOps: maxOps, limit: limit)
                let wireRequest = try SyncRequest(binary: request.binaryEncoded())
                let response = try server.sync(wireRequest, device: device, now: clock)
                let wireResponse = try SyncResponse(binary: response.binaryEncoded())
                let outcome = replica.apply(wireResponse, wall: clock)
                outcomes.append(outcome)
                if !outcome.needsAnotherRound && replica.pending.isEmpty { break }
                if !outcome.needsAnotherRound && maxOps == .max && outcome.accepted == 0 && outcome.rejected.isEmpty { break }
            }
            devices[name] = (replica, device)
            return outcomes
        }

        func replica(_ name: String) -> ClientReplica { devices[name]!.0 }
        mutating func edit(_ name: String, _ body: (inout ClientReplica, UInt64) throws -> Void) rethrows {
            clock += 1000
            try body(&devices[name]!.0, clock)
        }

        /// Device and server copies of every segment the device holds are byte-identical.
        func identical(_ name: String) -> Bool {
            let replica = replica(name)
            for (key, state) in replica.confirmed {
                guard let server = server.segment(key), server.state.canonicalBytes() == state.canonicalBytes() else { return false }
            }
            return true
        }
    }

    func isIdentical(_ world: World, _ name: String) -> Bool { world.identical(name) }

    func seededWorld() throws -> World {
        var world = World()
        world.addDevice("wmo", user: "wendy", role: "wmo-consulent", replica: 10, households: [h])
        world.addDevice("coach", user: "bas", role: "buurtcoach", replica: 11, households: [h])
        // The coach creates the household; the WMO consulent is assigned to it.
        try world.edit("coach") { replica, wall in
            _ = try replica.createHousehold(id: h, label: "Fam. Voorbeeld", wall: wall)
        }
        try world.sync("coach")
        try world.edit("wmo") { replica, wall in
            try replica.set(household: h, field: "wmo_request", value: "Hulp bij het huishouden", wall: wall)
        }
        try world.sync("wmo")
        try world.sync("coach")
        return world
    }

    @Test func createAndSyncConverges() throws {
        let world = try seededWorld()
        do { let same = world.identical("wmo"); #expect(same) }
        do { let same = world.identical("coach"); #expect(same) }
        #expect(world.replica("wmo").view(SegmentKey(household: h, purpose: .regie))?.value(of: "label") == "Fam. Voorbeeld")
        // The coach has no WMO: it never received the WMO segment.
        #expect(world.replica("coach").confirmed[SegmentKey(household: h, purpose: .wmo)] == nil)
        #expect(world.replica("wmo").pending.isEmpty)
    }

    @Test func aFieldWrittenTwiceOfflineLeavesTheDeviceOnce() throws {
        var world = try seededWorld()
        let segment = SegmentKey(household: h, purpose: .wmo)
        try world.edit("wmo") { replica, wall in
            try replica.set(household: h, field: "wmo_request", value: "Concept: hulp bij de was", wall: wall)
            try replica.set(household: h, field: "wmo_request", value: "Hulp bij het huishouden en de was", wall: wall + 1)
        }
        let drafts = world.replica("wmo").pending
        let request = world.replica("wmo").makeRequest()
        #expect(request.ops.count == 1, "the draft travels as a counter in the later write")
        #expect(request.ops.first?.absorbs == [drafts[0].dot.counter])
        #expect(!Data(request.binaryEncoded()).containsBytes("Concept"))
        let outcomes = try world.sync("wmo")
        #expect(outcomes.first?.accepted == 2, "both writes are acknowledged")
        #expect(world.replica("wmo").pending.isEmpty)
        #expect(outcomes.allSatisfy { $0.resnapshots.isEmpty })
        do { let same = world.identical("wmo"); #expect(same) }
        #expect(world.server.segment(segment)?.state.value(of: "wmo_request") == "Hulp bij het huishouden en de was")

        // The draft pushed whole later (a lost response, other chunks) gets the absorbed verdict, not dotReuse.
        let (_, device) = world.devices["wmo"]!
        let again = try world.server.sync(SyncRequest(cursor: .start, schemaHash: "", held: HeldSet(segments: [], includeList: true),
                                                      ops: [drafts[0]]), device: device, now: world.clock + 1)
        #expect(again.rejected.isEmpty)
        #expect(again.accepted.contains { $0.contains(drafts[0].dot) })
    }

    @Test func draftsOfARefusedWriteComeWholeNextRoundAndAreJudgedOnTheirOwn() throws {
        var world = try seededWorld()
        let regie = SegmentKey(household: h, purpose: .regie)
        try world.edit("coach") { replica, wall in
            try replica.set(household: h, field: "next_evaluation_date", value: "2027-03-01", wall: wall)
            try replica.set(household: h, field: "next_evaluation_date", value: "2027-04-01", wall: wall + 1)
        }
        var (replica, device) = world.devices["coach"]!
        let draft = replica.pending[0]
        // The last write reaches the server with a value its schema refuses (as after a schema change).
        var request = replica.makeRequest()
        #expect(request.ops.count == 1)
        request.ops[0].payload = .set(field: "next_evaluation_date", value: "geen datum", resolves: [])
        let response = try world.server.sync(request, device: device, now: world.clock + 1)
        #expect(response.rejected.map(\.reason) == [.invalid])
        #expect(!response.accepted.contains { $0.contains(draft.dot) }, "the draft gets no verdict of its own yet")
        replica.apply(response, wall: world.clock + 1)
        #expect(replica.pending.map(\.dot) == [draft.dot], "the draft stays pending")
        world.devices["coach"] = (replica, device)
        // Next round it goes whole, and its own value is fine.
        let outcomes = try world.sync("coach")
        #expect(outcomes.first?.accepted == 1)
        #expect(world.server.segment(regie)?.state.value(of: "next_evaluation_date") == "2027-03-01")
        #expect(world.replica("coach").rejected.count == 1)
        do { let same = world.identical("coach"); #expect(same) }
    }

    @Test func aRefusedWriteAndItsDraftsAreAllKeptAsRejected() throws {
        var world = try seededWorld()
        world.server.policies["wendy"]!.rolePurposes[.wmo] = .read
        try world.edit("wmo") { replica, wall in
            try replica.set(household: h, field: "wmo_request", value: "Concept: iets anders", wall: wall)
            try replica.set(household: h, field: "wmo_request", value: "Iets anders", wall: wall + 1)
        }
        let outcomes = try world.sync("wmo")
        #expect(outcomes.flatMap { $0.rejected.map(\.reason) } == [.readOnly, .readOnly])
        let replica = world.replica("wmo")
        #expect(replica.pending.isEmpty)
        // Both stay with the worker, where `fieldcli rejected` shows them.
        #expect(Set(replica.rejected.compactMap { record -> String? in
            if case .set(_, let value, _) = record.op.payload { return value }
            return nil
        }) == ["Concept: iets anders", "Iets anders"])
        #expect(replica.view(SegmentKey(household: h, purpose: .wmo))?.value(of: "wmo_request") == "Hulp bij het huishouden")
    }

    @Test func aPendingWriteStaysVisibleWhenThePushAnswerWasLost() throws {
        var world = try seededWorld()
        let regie = SegmentKey(household: h, purpose: .regie)
        try world.edit("coach") { replica, wall in
            try replica.appendLog(household: h, purpose: .regie, kind: "telefoon", occurredAt: nil, text: "Gebeld (fictief)", wall: wall)
            try replica.set(household: h, field: "area", value: "Oost", wall: wall + 1)
        }
        // The push lands but its answer is lost; a colleague writes; the coach pulls without pushing.
        var (coach, device) = world.devices["coach"]!
        _ = try world.server.sync(coach.makeRequest(), device: device, now: world.clock + 1)
        try world.edit("wmo") { replica, wall in
            try replica.set(household: h, field: "agreements", value: "Elke dinsdag bellen", wall: wall)
        }
        try world.sync("wmo")
        let response = try SyncResponse(binary: world.server.sync(coach.makeRequest(maxOps: 0), device: device,
                                                                 now: world.clock + 2).binaryEncoded())
        #expect(response.deltas.contains { $0.segment == regie && $0.context.contains(coach.pending[0].dot) })
        // The server holds writes this copy gets only when they are acknowledged, so the state
        // check cannot match and would re-fetch the copy; without it the delta's context alone
        // must not hide the worker's pending writes (decision 32).
        var unchecked = response
        unchecked.stateCheck = nil
        var probe = coach
        probe.apply(unchecked, wall: world.clock + 2)
        #expect(probe.view(regie)?.logs["contactlog"]?.entries.contains { $0.body.text == "Gebeld (fictief)" } == true)
        #expect(probe.view(regie)?.value(of: "area") == "Oost")
        #expect(probe.confirmed[regie]?.context.contains(probe.pending[0].dot) == false, "the copy claims no write it lacks")
        let outcome = coach.apply(response, wall: world.clock + 2)
        #expect(outcome.resnapshots == [regie])
        #expect(coach.pending.count == 2)
        #expect(coach.view(regie)?.logs["contactlog"]?.entries.contains { $0.body.text == "Gebeld (fictief)" } == true)
        #expect(coach.view(regie)?.value(of: "area") == "Oost")
        world.devices["coach"] = (coach, device)
        let outcomes = try world.sync("coach")
        #expect(outcomes.allSatisfy { $0.resnapshots.isEmpty })
        do { let same = world.identical("coach"); #expect(same) }
    }

    @Test func absorbsNamingAnotherReplicasDotsPoisonNothing() throws {
        var world = try seededWorld()
        let (_, attacker) = world.devices["wmo"]!
        let victim = world.replica("coach").replica
        let regie = SegmentKey(household: h, purpose: .regie)
        var context = VersionVector()
        context.raise(victim, to: 50)
        var op = SyncOperation(dot: Dot(replica: victim, counter: 60), segment: regie, epoch: 0,
                               stamp: HLCTimestamp(milliseconds: world.clock, logical: 0), author: "wendy", context: context,
                               payload: .set(field: "area", value: "Vals", resolves: []))
        op.absorbs = Array(1...50)
        let request = SyncRequest(cursor: .start, schemaHash: "", held: HeldSet(segments: [], includeList: true), ops: [op])
        for _ in 0..<2 {  // and again, as a re-push
            let response = try world.server.sync(request, device: attacker, now: world.clock + 1)
            #expect(response.rejected.map(\.reason) == [.invalid])
            #expect(response.accepted.isEmpty)
        }
        #expect(world.server.segment(regie)?.state.context.contains(Dot(replica: victim, counter: 60)) == false,
                "another replica's dot is never recorded as seen")
        // The victim's next writes, at counters the op named, land.
        try world.edit("coach") { replica, wall in
            try replica.set(household: h, field: "area", value: "Echte wijk", wall: wall)
        }
        let outcomes = try world.sync("coach")
        #expect(outcomes.flatMap(\.rejected).isEmpty)
        #expect(world.server.segment(regie)?.state.value(of: "area") == "Echte wijk")
    }

    @Test func aWriteAbsorbsAtMostTheLimitOfDrafts() throws {
        var world = try seededWorld()
        try world.edit("coach") { replica, wall in
            for i in 0...(OperationValidator.maxAbsorbed + 2) {
                try replica.set(household: h, field: "area", value: "Wijk \(i)", wall: wall + UInt64(i))
            }
        }
        let request = world.replica("coach").makeRequest()
        #expect(request.ops.allSatisfy { ($0.absorbs?.count ?? 0) <= OperationValidator.maxAbsorbed })
        #expect(request.ops.count == 3, "the two drafts beyond the limit go whole")
        let outcomes = try world.sync("coach")
        #expect(outcomes.first?.accepted == OperationValidator.maxAbsorbed + 3)
        #expect(world.server.segment(SegmentKey(household: h, purpose: .regie))?.state.value(of: "area") == "Wijk \(OperationValidator.maxAbsorbed + 2)")
        do { let same = world.identical("coach"); #expect(same) }
    }

    @Test func aSnapshotForAPushIntoAnUnheldSegmentLeavesOutTheDevicesOwnWrites() throws {
        var world = try seededWorld()
        let regie = SegmentKey(household: h, purpose: .regie)
        // The coach's device lost its copy of the plan (a damaged store) but still writes to it.
        world.devices["coach"]!.0.confirmed[regie] = nil
        world.devices["coach"]!.0.sendFullHeld = true
        try world.edit("coach") { replica, wall in
            try replica.appendLog(household: h, purpose: .regie, kind: "telefoon", occurredAt: nil,
                                  text: "Eigen notitie van de buurtcoach", wall: wall)
            try replica.set(household: h, field: "area", value: "Eigen wijk", wall: wall + 1)
        }
        var (replica, device) = world.devices["coach"]!
        let request = replica.makeRequest()
        let response = try SyncResponse(binary: world.server.sync(request, device: device, now: world.clock + 1).binaryEncoded())
        let snapshot = try #require(response.snapshots.first { $0.segment == regie })
        #expect(!Data(response.binaryEncoded()).containsBytes("Eigen notitie"), "the device's own text is not echoed")
        #expect(!Data(response.binaryEncoded()).containsBytes("Eigen wijk"))
        #expect(snapshot.elements.contains { $0.key == .field("label") }, "the rest of the plan comes whole")
        let outcome = replica.apply(response, wall: world.clock + 1)
        #expect(outcome.resnapshots.isEmpty, "the state check matches")
        #expect(replica.confirmed[regie]?.canonicalBytes() == world.server.segment(regie)?.state.canonicalBytes())
        #expect(replica.view(regie)?.value(of: "area") == "Eigen wijk")
        world.devices["coach"] = (replica, device)
    }

    @Test func rejectedPendingWriteDisappearsAndConfirmedValueReturns() throws {
        var world = try seededWorld()
        let segment = SegmentKey(household: h, purpose: .wmo)
        // The server makes WMO read-only for wendy; her device has not heard yet.
        world.server.policies["wendy"]!.rolePurposes[.wmo] = .read
        try world.edit("wmo") { replica, wall in
            try replica.set(household: h, field: "wmo_request", value: "Iets anders", wall: wall)
        }
        #expect(world.replica("wmo").view(segment)?.value(of: "wmo_request") == "Iets anders")
        let outcomes = try world.sync("wmo")
        #expect(outcomes.first?.rejected.map(\.reason) == [.readOnly])
        let replica = world.replica("wmo")
        #expect(replica.view(segment)?.value(of: "wmo_request") == "Hulp bij het huishouden")
        #expect(replica.rejected.count == 1)
        #expect(replica.pending.isEmpty)
        do { let same = world.identical("wmo"); #expect(same) }
        // And the device now refuses such writes locally.
        #expect(throws: SyncCoreError.self) {
            var copy = replica
            try copy.set(household: h, field: "wmo_request", value: "x", wall: now)
        }
    }

    @Test func resnapshotKeepsPendingOps() throws {
        var world = try seededWorld()
        let segment = SegmentKey(household: h, purpose: .regie)
        // Corrupt the device's confirmed copy: the next state check will not match.
        // A copy that lost one element (as a damaged store would load it).
        let original = world.devices["coach"]!.0.confirmed[segment]!
        var damaged = SegmentState(key: segment, epoch: original.epoch)
        damaged.join(context: original.context)
        for element in original.elements where element.key != .field("label") { damaged.join(element) }
        world.devices["coach"]!.0.confirmed[segment] = damaged
        try world.edit("coach") { replica, wall in
            try replica.set(household: h, field: "area", value: "Dorpen", wall: wall)
            try replica.set(household: h, field: "next_evaluation_date", value: "2027-03-01", wall: wall)
        }
        // Push one op only: the other stays pending while the segment is re-fetched.
        var (replica, device) = world.devices["coach"]!
        let response = try world.server.sync(replica.makeRequest(maxOps: 1), device: device, now: now + 10_000)
        let outcome = replica.apply(response, wall: now + 10_000)
        #expect(outcome.resnapshots == [segment])
        #expect(replica.confirmed[segment] == nil)
        #expect(replica.pending.count == 1)
        #expect(replica.view(segment)?.value(of: "next_evaluation_date") == "2027-03-01")
        world.devices["coach"] = (replica, device)
        try world.sync("coach")
        #expect(world.replica("coach").pending.isEmpty)
        #expect(world.replica("coach").view(segment)?.value(of: "area") == "Dorpen")
        do { let same = world.identical("coach"); #expect(same) }
    }

    /// A goal the device knows only from its own pending edit (its copy of the segment was dropped)
    /// cannot be acted on until the re-fetch: the error says to sync, not that the value is invalid.
    @Test func aGoalKnownOnlyFromAPendingEditWaitsForTheRefetch() throws {
        var world = try seededWorld()
        let segment = SegmentKey(household: h, purpose: .regie)
        var goal = Dot(replica: ReplicaID(11), counter: 1)
        try world.edit("coach") { r, wall in goal = try r.insertItem(household: h, purpose: .regie, text: "Werk zoeken", wall: wall).dot }
        try world.sync("coach")
        try world.edit("coach") { r, wall in try r.editItem(household: h, purpose: .regie, item: goal, field: .text, value: "Werk vinden", wall: wall) }
        world.devices["coach"]!.0.confirmed[segment] = nil  // a damaged store: the copy is gone, the pending edit is not
        world.devices["coach"]!.0.sendFullHeld = true
        world.devices["coach"]!.0.dropViews(of: [segment])
        do {
            try world.edit("coach") { r, wall in try r.removeItem(household: h, purpose: .regie, item: goal, wall: wall) }
            Issue.record("a goal without its insert was removed")
        } catch let error as SyncCoreError {
            #expect(error.code == .notFound)
            #expect(error.message.contains("fieldcli sync"))
        }
        try world.sync("coach")
        try world.edit("coach") { r, wall in try r.removeItem(household: h, purpose: .regie, item: goal, wall: wall) }
        try world.sync("coach")
        #expect(world.server.segment(segment)?.state.collections["doelen"]?[goal]?.isLive == false)
    }

    @Test func concurrentOfflineEditsConflictAndResolve() throws {
        var world = try seededWorld()
        try world.edit("wmo") { r, wall in try r.set(household: h, field: "regisseur", value: "wendy", wall: wall) }
        try world.edit("coach") { r, wall in try r.set(household: h, field: "regisseur", value: "bas", wall: wall) }
        try world.sync("wmo")
        let coachOutcome = try world.sync("coach")
        try world.sync("wmo")
        #expect(coachOutcome.contains { $0.newConflicts > 0 })
        let wmoConflicts = world.replica("wmo").conflicts(household: h)
        let coachConflicts = world.replica("coach").conflicts(household: h)
        #expect(wmoConflicts.count == 1)
        #expect(wmoConflicts == coachConflicts)
        #expect(wmoConflicts.first?.values.count == 2)
        #expect(wmoConflicts.first?.kind == .invariant)
        let winner = wmoConflicts.first!.values.first { $0.winner }!
        try world.edit("coach") { r, wall in
            try r.resolve(household: h, field: "regisseur", pick: winner.id, value: nil, wall: wall)
        }
        try world.sync("coach")
        try world.sync("wmo")
        #expect(world.replica("wmo").conflicts(household: h).isEmpty)
        #expect(world.replica("coach").conflicts(household: h).isEmpty)
        do { let same = world.identical("wmo") && world.identical("coach"); #expect(same) }
    }

    @Test func erasureUsesPurgeAndRejectsOldEpochOps() throws {
        var world = try seededWorld()
        let segment = SegmentKey(household: h, purpose: .wmo)
        try world.edit("wmo") { r, wall in
            try r.appendLog(household: h, purpose: .wmo, kind: "huisbezoek", occurredAt: nil, text: "Keukentafelgesprek gevoerd.", wall: wall)
        }
        world.server.erase(segment)
        let outcomes = try world.sync("wmo")
        let replica = world.replica("wmo")
        #expect(outcomes.flatMap(\.rejected).map(\.reason).contains(.erased))
        #expect(outcomes.flatMap(\.purged).contains(segment))
        #expect(replica.confirmed[segment] == nil)
        #expect(replica.rejected.isEmpty)  // ops of an erased segment are not kept
        #expect(replica.epochs[segment] == 1)
        // New work under the purpose starts again at the new epoch.
        try world.edit("wmo") { r, wall in try r.set(household: h, field: "wmo_request", value: "Nieuw", wall: wall) }
        try world.sync("wmo")
        #expect(world.replica("wmo").confirmed[segment]?.epoch == 1)
        do { let same = world.identical("wmo"); #expect(same) }
    }

    @Test func newWorkForAnErasedSegmentTheDeviceNeverHeldLandsAtTheNewEpoch() throws {
        var world = try seededWorld()
        let wmo = SegmentKey(household: h, purpose: .wmo)
        world.server.erase(wmo)
        // A colleague who never held WMO is granted it and writes offline, unaware of the erasure.
        world.server.policies["bas"]!.grants = [Grant(purpose: .wmo, access: .write)]
        world.devices["coach"]!.0.policy.grants = [Grant(purpose: .wmo, access: .write)]
        try world.edit("coach") { r, wall in try r.set(household: h, field: "wmo_request", value: "Nieuwe aanvraag", wall: wall) }
        #expect(world.replica("coach").pending.first?.epoch == 0)
        try world.sync("coach")
        let coach = world.replica("coach")
        #expect(coach.pending.isEmpty)
        #expect(coach.confirmed[wmo]?.epoch == 1)
        #expect(coach.confirmed[wmo]?.value(of: "wmo_request") == "Nieuwe aanvraag")
        #expect(coach.rejected.isEmpty)
        do { let same = world.identical("coach"); #expect(same) }
    }

    /// A goal both devices hold, then edited on "wmo" and removed on "coach", neither synced since.
    func goalEditedWhileRemoved(text: String, field: ItemField, value: String) throws -> (World, Dot) {
        var world = try seededWorld()
        var goal = Dot(replica: ReplicaID(10), counter: 1)
        try world.edit("wmo") { r, wall in goal = try r.insertItem(household: h, purpose: .regie, text: text, wall: wall).dot }
        try world.sync("wmo")
        try world.sync("coach")
        try world.edit("wmo") { r, wall in try r.editItem(household: h, purpose: .regie, item: goal, field: field, value: value, wall: wall) }
        try world.edit("coach") { r, wall in try r.removeItem(household: h, purpose: .regie, item: goal, wall: wall) }
        return (world, goal)
    }

    @Test func markingAGoalDoneWhileAnotherRemovesItKeepsItsWords() throws {
        var (world, goal) = try goalEditedWhileRemoved(text: "Zelf boodschappen doen", field: .status, value: "done")
        try world.sync("wmo")
        try world.sync("coach")
        try world.sync("wmo")
        for name in ["wmo", "coach"] {
            let item = world.replica(name).view(SegmentKey(household: h, purpose: .regie))?.collections["doelen"]?[goal]
            #expect(item?.isLive == true && item?.isFlagged == true)
            #expect(item?.text.winner?.value == "Zelf boodschappen doen")
            #expect(item?.status.winner?.value == "done")
        }
    }

    /// A goal edited on one device and removed on another is a new conflict on
    /// both, counted by the sync that brings the other side.
    @Test func aGoalEditedWhileRemovedIsANewConflictOnBothSides() throws {
        var (world, _) = try goalEditedWhileRemoved(text: "Administratie op orde", field: .text, value: "Post openen")
        #expect(try world.sync("wmo").map(\.newConflicts).reduce(0, +) == 0)
        #expect(try world.sync("coach").map(\.newConflicts).reduce(0, +) == 1, "the edit arrives at the remover")
        #expect(try world.sync("wmo").map(\.newConflicts).reduce(0, +) == 1, "the remove arrives at the editor")
        #expect(world.replica("wmo").conflicts(household: h).map(\.kind) == [.editedWhileRemoved])
    }

    /// A refused resolve leaves the view: the conflict it hid is there again, and new to the user.
    @Test func aRefusedResolveBringsItsConflictBack() throws {
        var world = try seededWorld()
        try world.edit("wmo") { r, wall in try r.set(household: h, field: "regisseur", value: "wendy", wall: wall) }
        try world.edit("coach") { r, wall in try r.set(household: h, field: "regisseur", value: "bas", wall: wall) }
        try world.sync("wmo")
        try world.sync("coach")
        try world.sync("wmo")
        let conflict = try #require(world.replica("wmo").conflicts(household: h).first)
        try world.edit("wmo") { r, wall in
            try r.resolve(household: h, field: "regisseur", pick: conflict.values[0].id, value: nil, wall: wall)
        }
        #expect(world.replica("wmo").conflicts(household: h).isEmpty, "the pending resolve hides the conflict")
        world.server.policies["wendy"]!.rolePurposes[.regie] = .read  // her device has not heard yet
        let outcomes = try world.sync("wmo")
        #expect(outcomes.first?.rejected.map(\.reason) == [.readOnly])
        #expect(outcomes.map(\.newConflicts).reduce(0, +) == 1)
        #expect(world.replica("wmo").conflicts(household: h).count == 1)
    }

    @Test func grantChangesSnapshotAndPurge() throws {
        var world = try seededWorld()
        let wmo = SegmentKey(household: h, purpose: .wmo)
        world.server.policies["bas"]!.grants = [Grant(purpose: .wmo, access: .read)]
        let gained = try world.sync("coach")
        #expect(gained.contains { $0.snapshots > 0 })
        #expect(world.replica("coach").confirmed[wmo] != nil)
        world.server.policies["bas"]!.grants = []
        let lost = try world.sync("coach")
        #expect(lost.flatMap(\.purged).contains(wmo))
        #expect(world.replica("coach").confirmed[wmo] == nil)
    }

    @Test func pagedPullConverges() throws {
        var world = World()
        let households = (0..<12).map { i in HouseholdID(bytes: Array(repeating: UInt8(i + 1), count: 16))! }
        world.addDevice("a", user: "ann", role: "buurtcoach", replica: 20, households: households)
        world.addDevice("b", user: "ben", role: "buurtcoach", replica: 21, households: [])
        try world.edit("a") { r, wall in
            for household in households {
                _ = try r.createHousehold(id: household, label: "Huishouden", wall: wall)
                try r.appendLog(household: household, purpose: .regie, kind: "telefoon", occurredAt: nil,
                                text: String(repeating: "Afspraak gemaakt. ", count: 20), wall: wall)
            }
        }
        try world.sync("a")
        world.server.policies["ben"]!.assignments = households.map { Assignment(household: $0) }
        let outcomes = try world.sync("b", limit: 600)
        #expect(outcomes.count > 2)
        #expect(world.replica("b").confirmed.count == households.count)
        do { let same = world.identical("b"); #expect(same) }
    }

    @Test func localRefusalNamesThePurpose() throws {
        var world = try seededWorld()
        do {
            try world.edit("wmo") { r, wall in try r.set(household: h, field: "wgs_notes", value: "x", wall: wall) }
            Issue.record("write should be refused")
        } catch let error as SyncCoreError {
            #expect(error.refusal == .purposeNotGranted)
            #expect(error.message.contains("WGS"))
        }
        #expect(world.replica("wmo").pending.isEmpty)
    }
}

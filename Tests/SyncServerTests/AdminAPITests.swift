import Foundation
import Testing
import SyncCore
import SyncServer

/// Point 4: the admin API behind `fieldcli admin` (DESIGN §8).
@Suite("Admin API")
struct AdminAPITests {
    @Test("users: add, list, reject duplicates and bad input, disable (their devices purge everything)")
    func usersAddListDisable() async throws {
        try await withServer { server in
            try await server.addUser("bas", role: "buurtcoach", contact: "bas@gemeente.example")
            #expect(try await server.admin("POST", "users", AdminAPI.AddUser(name: "bas", role: "buurtcoach", contact: nil)).status == 409)
            let badRole = try await server.admin("POST", "users", AdminAPI.AddUser(name: "kees", role: "koning", contact: nil))
            #expect(badRole.status == 400)
            #expect(badRole.error?.code == "badRequest")
            #expect(try await server.admin("POST", "users", AdminAPI.AddUser(name: "met spatie", role: "buurtcoach", contact: nil)).status == 400)

            var bas = try await server.device("bas")
            let h = HouseholdID(UUID())
            _ = try bas.replica.createHousehold(id: h, label: "Fam. Buurtproef", wall: server.clock.now)
            try bas.replica.set(household: h, field: "inf_network", value: "Buurvrouw doet de was", wall: server.clock.now)
            try await bas.sync(server)
            #expect(bas.segment(h, .regie) != nil && bas.segment(h, .informeel) != nil)

            let users = try await server.adminOK([AdminAPI.UserInfo].self, "GET", "users")
            #expect(users.map(\.name) == ["admin", "bas"])
            let listed = try #require(users.first { $0.name == "bas" })
            #expect(listed.role == "buurtcoach")
            #expect(listed.contact == "bas@gemeente.example")
            #expect(listed.devices == 1)
            #expect(!listed.disabled)

            let roles = try await server.adminOK([String: [String: String]].self, "GET", "roles")
            #expect(roles["wmo-consulent"] == ["REGIE": "write", "WMO": "write"])
            #expect(roles["schuldhulp"] == ["REGIE": "write", "WGS": "write"])

            _ = try await server.adminOK(AdminAPI.Done.self, "POST", "users/bas/disable")
            #expect(try await server.adminOK([AdminAPI.UserInfo].self, "GET", "users").first { $0.name == "bas" }?.disabled == true)
            #expect(try await server.admin("POST", "users/bas/enrollment-code").status == 409)
            #expect(try await server.admin("POST", "users/admin/disable").status == 409, "an admin cannot disable themself")
            #expect(try await server.admin("POST", "users/niemand/disable").status == 404)

            // Bas's device learns at its next sync: everything it held is purged, and its writes are refused.
            let late = handMadeOp(replica: bas.replicaID, counter: 90, household: h, purpose: .regie, author: "bas",
                                  payload: .set(field: "area", value: "Na uitschakeling", resolves: []), wall: server.clock.now)
            var request = bas.replica.makeRequest()
            request.ops = [late]
            let round = try await bas.roundTrip(server.http, wall: server.clock.now, request: request)
            #expect(round.response.rejection(of: late) == .notAssigned)
            let rounds = [round] + (try await bas.sync(server))
            #expect(Set(rounds.flatMap(\.response.purge).map(\.segment))
                    == [SegmentKey(household: h, purpose: .regie), SegmentKey(household: h, purpose: .informeel)])
            #expect(bas.replica.confirmed.isEmpty)
        }
    }

    @Test("grants: household-scoped with expiry (purged after 'until' on the injected clock), and for all households")
    func grantsWithHouseholdAndExpiry() async throws {
        try await withServer { server in
            var s = try await PlanScenario.make(server)
            let h2 = HouseholdID(UUID())
            _ = try s.wendy.replica.createHousehold(id: h2, label: "Fam. Tweede Proef", wall: server.clock.now)
            try s.wendy.replica.set(household: h2, field: "wmo_request", value: "Rolstoel aangevraagd", wall: server.clock.now)
            try await s.wendy.sync(server)
            try await server.assign("sam", h2)

            let until = server.clock.now + hour
            let result = try await server.grant("sam", .wmo, .read, household: s.household, until: until)
            #expect(result.until == until)
            #expect(!result.selfGrant)
            try await s.sam.sync(server)
            #expect(s.sam.segment(s.household, .wmo)?.value(of: "wmo_request") == s.wmoSecret, "the grant makes WMO of H readable")
            #expect(s.sam.segment(h2, .wmo) == nil, "a household-scoped grant does not reach other households")
            #expect(s.sam.replica.policy.grants.contains { $0.purpose == .wmo && $0.household == s.household && $0.until == until })

            // Read, not write.
            let write = handMadeOp(replica: s.sam.replicaID, counter: 1, household: s.household, purpose: .wmo, author: "sam",
                                   payload: .set(field: "wmo_indication", value: "Door Sam", resolves: []), wall: server.clock.now)
            var request = s.sam.replica.makeRequest()
            request.ops = [write]
            #expect(try await s.sam.roundTrip(server.http, wall: server.clock.now, request: request).response.rejection(of: write) == .readOnly)

            let access = try await server.adminOK([AdminAPI.AccessEntry].self, "GET", "households/\(s.household)/access")
            let samAccess = try #require(access.first { $0.user == "sam" })
            #expect(samAccess.purposes.contains { $0.purpose == .wmo && $0.access == .read && $0.basis == "grant" && $0.until == until })
            #expect(samAccess.purposes.contains { $0.purpose == .wgs && $0.access == .write && $0.basis == "role" })
            let wendyAccess = try #require(access.first { $0.user == "wendy" })
            #expect(wendyAccess.purposes.contains { $0.purpose == .wmo && $0.access == .write && $0.basis == "role" })
            #expect(!wendyAccess.purposes.contains { $0.purpose == .wgs })

            // Past 'until': the next sync purges it.
            server.clock.advance(2 * hour)
            let expired = try await s.sam.sync(server).flatMap(\.response.purge)
            #expect(expired.contains { $0.segment == s.segment(.wmo) && $0.reason == PurgeInstruction.notReadable })
            #expect(s.sam.segment(s.household, .wmo) == nil)
            let after = try await server.adminOK([AdminAPI.AccessEntry].self, "GET", "households/\(s.household)/access")
            #expect(!(after.first { $0.user == "sam" }?.purposes.contains { $0.purpose == .wmo } ?? true))

            // A grant without a household applies to all of Sam's assigned households; revoking it purges both.
            try await server.grant("sam", .wmo, .read)
            try await s.sam.sync(server)
            #expect(s.sam.segment(s.household, .wmo) != nil)
            #expect(s.sam.segment(h2, .wmo)?.value(of: "wmo_request") == "Rolstoel aangevraagd")
            _ = try await server.adminOK(AdminAPI.Done.self, "POST", "grants/revoke", AdminAPI.RevokeGrant(user: "sam", purpose: .wmo, household: nil))
            let revoked = try await s.sam.sync(server).flatMap(\.response.purge)
            #expect(Set(revoked.map(\.segment)) == [s.segment(.wmo), SegmentKey(household: h2, purpose: .wmo)])
            #expect(s.sam.segment(h2, .wmo) == nil)
            #expect(try await server.admin("POST", "grants/revoke", AdminAPI.RevokeGrant(user: "sam", purpose: .wmo, household: nil)).status == 404)

            // An admin granting themself access is flagged.
            let own = try await server.grant("admin", .wmo, .read, household: s.household)
            #expect(own.selfGrant)
        }
    }

    @Test("device list shows last sync time and lag (server changes not yet pulled)")
    func deviceListShowsLastSyncAndLag() async throws {
        try await withServer { server in
            var s = try await PlanScenario.make(server)
            server.clock.advance(60_000)
            let t1 = server.clock.now
            try await s.wendy.sync(server)
            var listed = try #require(try await server.devices().first { $0.id == s.wendy.id })
            #expect(listed.lastSyncAt == t1)
            #expect(listed.lag == 0)
            #expect(listed.name == "wendy-laptop")
            #expect(listed.replica == s.wendy.enrollment.replica)

            server.clock.advance(60_000)
            for value in ["2026-11-01", "2026-11-02", "2026-11-03"] {
                try s.sam.replica.set(household: s.household, field: "next_contact", value: value, wall: server.clock.now)
            }
            try await s.sam.sync(server)
            listed = try #require(try await server.devices().first { $0.id == s.wendy.id })
            #expect(listed.lastSyncAt == t1)
            #expect(listed.lag >= 3, "three ops landed since Wendy's last pull")
            #expect(try await server.devices().first { $0.id == s.sam.id }?.lag == 0)

            server.clock.advance(60_000)
            let t3 = server.clock.now
            try await s.wendy.sync(server)
            listed = try #require(try await server.devices().first { $0.id == s.wendy.id })
            #expect(listed.lastSyncAt == t3)
            #expect(listed.lag == 0)
            #expect(s.wendy.segment(s.household, .regie)?.value(of: "next_contact") == "2026-11-03")
        }
    }

    @Test("a conflict a worker resolves on the device leaves the admin's queue; one that stays, stays listed")
    func conflictResolvedByAWorkerLeavesTheQueue() async throws {
        try await withServer { server in
            var s = try await PlanScenario.make(server)
            for (field, wendys, sams) in [("regisseur", "wendy", "sam"), ("next_contact", "2026-12-07", "2026-12-08")] {
                _ = try s.wendy.replica.set(household: s.household, field: field, value: wendys, wall: server.clock.now)
                _ = try s.sam.replica.set(household: s.household, field: field, value: sams, wall: server.clock.now)
            }
            try await s.wendy.sync(server)
            try await s.sam.sync(server)
            #expect(Set(try await server.conflicts(household: s.household).map(\.name)) == ["regisseur", "next_contact"])

            server.clock.advance(60_000)
            _ = try s.sam.replica.resolve(household: s.household, field: "regisseur", pick: nil, value: "sam", wall: server.clock.now)
            try await s.sam.sync(server)
            #expect(try await server.conflicts(household: s.household).map(\.name) == ["next_contact"])
            try await s.wendy.sync(server)
            #expect(s.wendy.replica.conflicts(household: s.household).map(\.name) == ["next_contact"])
        }
    }

    @Test("conflicts: listed with value IDs, values only with an audited break-glass; resolve by pick clears it on both devices")
    func conflictsBreakGlassAndResolve() async throws {
        try await withServer { server in
            var s = try await PlanScenario.make(server)
            let wendyOp = try s.wendy.replica.set(household: s.household, field: "regisseur", value: "wendy", wall: server.clock.now)
            let samOp = try s.sam.replica.set(household: s.household, field: "regisseur", value: "sam", wall: server.clock.now)
            try await s.wendy.sync(server)
            try await s.sam.sync(server)
            try await s.wendy.sync(server)
            #expect(s.wendy.replica.conflicts(household: s.household).count == 1)
            #expect(s.sam.replica.conflicts(household: s.household).count == 1)

            let listed = try await server.conflicts(household: s.household)
            #expect(listed.count == 1)
            let entry = try #require(listed.first)
            #expect(entry.name == "regisseur")
            #expect(entry.purpose == .regie)
            #expect(Set(entry.valueIDs) == [wendyOp.dot.description, samOp.dot.description])
            #expect(entry.values == nil, "an admin without a grant sees value IDs only")

            let tooShort = try await server.admin("POST", "conflicts/query", ["household": s.household.description, "breakGlass": "kort"])
            #expect(tooShort.status == 400)
            // The audit log is never erased: a reason is one line, not a place for a client's story.
            let story = String(repeating: "Mevrouw belde over haar schulden en haar zoon. ", count: 6)
            let tooLong = try await server.admin("POST", "conflicts/query", ["household": s.household.description, "breakGlass": story])
            #expect(tooLong.status == 400 && tooLong.error?.message.contains("no client details") == true)
            let shortResolve = try await server.admin("POST", "conflicts/resolve",
                                                      AdminAPI.Resolve(household: s.household, field: "regisseur", pick: nil, value: "admin", breakGlass: "kort"))
            #expect(shortResolve.status == 400, "a resolve's reason is held to the same rule")
            let reason = "Klacht van bewoner over dubbele regie, onderzoek 2026-17"
            let glass = try await server.conflicts(household: s.household, breakGlass: reason)
            #expect(Set(glass.first?.values?.map(\.value) ?? []) == ["wendy", "sam"])
            let audit = try await server.audit(household: s.household)
            #expect(audit.contains { $0.action == "breakGlass" && $0.actor == "admin" && $0.detail.contains(reason) && $0.purpose == "REGIE" })

            // Writing a new value needs a grant or a break-glass.
            let forbidden = try await server.admin("POST", "conflicts/resolve",
                                                   AdminAPI.Resolve(household: s.household, field: "regisseur", pick: nil, value: "admin", breakGlass: nil))
            #expect(forbidden.status == 403)
            let resolved = try await server.adminOK(AdminAPI.ResolveResult.self, "POST", "conflicts/resolve",
                                                    AdminAPI.Resolve(household: s.household, field: "regisseur", pick: samOp.dot.description,
                                                                     value: nil, breakGlass: nil))
            #expect(Set(resolved.superseded) == [wendyOp.dot.description, samOp.dot.description])
            #expect(try await server.audit(household: s.household).contains { $0.action == "resolve" && $0.actor == "admin" })

            try await s.wendy.sync(server)
            try await s.sam.sync(server)
            for device in [s.wendy, s.sam] {
                #expect(device.replica.conflicts(household: s.household).isEmpty, "\(device.user) still sees a conflict")
                #expect(device.segment(s.household, .regie)?.value(of: "regisseur") == "sam")
            }
            #expect(try await server.conflicts(household: s.household).isEmpty)
            #expect(try await server.admin("POST", "conflicts/resolve",
                                           AdminAPI.Resolve(household: s.household, field: "regisseur", pick: wendyOp.dot.description,
                                                            value: nil, breakGlass: nil)).status == 404, "a superseded value cannot be picked")
        }
    }

    @Test("requeue lands only what a grant or an assignment can lift: an op refused as invalid stays refused once the grant is there")
    func requeueRefusesMalformedOps() async throws {
        try await withServer { server in
            var s = try await PlanScenario.make(server)
            var forged = s.wgsOpByWendy(counter: 1, value: "Onder andermans naam (fictief)")
            forged.author = "sam"
            var request = s.wendy.replica.makeRequest()
            request.ops = [forged]
            let round = try await s.wendy.roundTrip(server.http, wall: server.clock.now, request: request)
            #expect(round.response.rejected.map(\.reason) == [.invalid])
            let id = try #require(try await server.rejects().first?.id)
            try await server.grant("wendy", .wgs, .write, household: s.household)
            let reply = try await server.admin("POST", "rejects/\(id)/requeue")
            #expect(reply.status == 409, "\(reply)")
            #expect(reply.error?.message.contains("invalid") == true, "\(reply)")
            #expect(try await server.rejects().first { $0.id == id }?.status == "held")
            try await s.sam.sync(server)
            #expect(s.sam.segment(s.household, .wgs)?.value(of: "wgs_notes") == nil, "nothing landed")
        }
    }

    @Test("rejects: listed, requeued after a grant (then delivered), discarded, all audited")
    func rejectsRequeueAndDiscard() async throws {
        try await withServer { server in
            var s = try await PlanScenario.make(server)
            let first = s.wgsOpByWendy(counter: 1, value: "Betalingsachterstand energie (fictief)")
            let second = s.wgsOpByWendy(counter: 2, value: "Tweede notitie")
            var request = s.wendy.replica.makeRequest()
            request.ops = [first, second]
            let round = try await s.wendy.roundTrip(server.http, wall: server.clock.now, request: request)
            #expect(round.response.rejected.map(\.reason) == [.purposeNotGranted, .purposeNotGranted])

            let rejects = try await server.rejects()
            #expect(rejects.count == 2)
            #expect(rejects.allSatisfy { $0.status == "held" && $0.kind == "set" && $0.name == "wgs_notes" && $0.household == s.household })
            let (firstID, secondID) = (rejects[0].id, rejects[1].id)

            let early = try await server.admin("POST", "rejects/\(firstID)/requeue")
            #expect(early.status == 409, "still refused without a grant: \(early)")
            try await server.grant("wendy", .wgs, .write, household: s.household)
            let requeued = try await server.adminOK(AdminAPI.RejectAction.self, "POST", "rejects/\(firstID)/requeue")
            #expect(requeued.status == "requeued")

            try await s.sam.sync(server)
            #expect(s.sam.segment(s.household, .wgs)?.value(of: "wgs_notes") == "Betalingsachterstand energie (fictief)",
                    "the requeued op landed and reaches a WGS reader")

            let discarded = try await server.adminOK(AdminAPI.RejectAction.self, "POST", "rejects/\(secondID)/discard")
            #expect(discarded.status == "discarded")
            let after = try await server.rejects()
            #expect(after.first { $0.id == firstID }?.status == "requeued")
            #expect(after.first { $0.id == secondID }?.status == "discarded")
            #expect(after.first { $0.id == secondID }?.kind == "discarded", "the discarded op's content is gone")
            #expect(try await server.admin("POST", "rejects/\(secondID)/requeue").status == 409)
            #expect(try await server.admin("POST", "rejects/\(secondID)/discard").status == 404)
            #expect(try await server.admin("POST", "rejects/999999/requeue").status == 404)

            let audit = try await server.audit(household: s.household)
            #expect(audit.contains { $0.action == "requeue" && $0.actor == "admin" && $0.purpose == "WGS" })
            #expect(audit.contains { $0.action == "discard" && $0.actor == "admin" && $0.purpose == "WGS" })
            #expect(audit.contains { $0.action == "grant" && $0.actor == "admin" && $0.detail.contains("wendy") })
        }
    }

    @Test("a consent withdrawal purges the purpose from devices and refuses writes; lifting it restores access")
    func consentBlockPurgesAndRefuses() async throws {
        try await withServer { server in
            var s = try await PlanScenario.make(server)
            _ = try await server.adminOK(AdminAPI.Done.self, "POST", "consent-blocks", AdminAPI.ConsentBlockRequest(household: s.household, purpose: .wmo))
            let write = handMadeOp(replica: s.wendy.replicaID, counter: 50, household: s.household, purpose: .wmo, author: "wendy",
                                   payload: .set(field: "wmo_indication", value: "Na intrekking", resolves: []), wall: server.clock.now)
            var request = s.wendy.replica.makeRequest()
            request.ops = [write]
            let first = try await s.wendy.roundTrip(server.http, wall: server.clock.now, request: request)
            #expect(first.response.rejection(of: write) == .consentWithdrawn)
            let purges = [first] + (try await s.wendy.sync(server))
            #expect(purges.flatMap(\.response.purge).contains { $0.segment == s.segment(.wmo) && $0.reason == PurgeInstruction.notReadable })
            #expect(s.wendy.segment(s.household, .wmo) == nil)
            #expect(s.wendy.segment(s.household, .regie) != nil, "a WMO block leaves the shared plan readable")
            #expect(s.wendy.replica.policy.consentBlocks.contains { $0.household == s.household && $0.purpose == .wmo })

            _ = try await server.adminOK(AdminAPI.Done.self, "POST", "consent-blocks/remove", AdminAPI.ConsentBlockRequest(household: s.household, purpose: .wmo))
            try await s.wendy.sync(server)
            #expect(s.wendy.segment(s.household, .wmo)?.value(of: "wmo_request") == s.wmoSecret, "newly readable segments arrive complete")
            #expect(s.wendy.segment(s.household, .wmo)?.value(of: "wmo_indication") == nil, "the refused write never landed")

            // A mistyped purpose, an unknown household or lifting a block that is not there changes nothing and says so.
            let mistyped = try await server.admin("POST", "consent-blocks", AdminAPI.ConsentBlockRequest(household: s.household, purpose: Purpose("WM0")))
            #expect(mistyped.status == 400 && mistyped.error?.message.contains("Purposes: ") == true)
            let unknown = try await server.admin("POST", "consent-blocks", AdminAPI.ConsentBlockRequest(household: HouseholdID(UUID()), purpose: .wmo))
            #expect(unknown.status == 404)
            let notThere = try await server.admin("POST", "consent-blocks/remove", AdminAPI.ConsentBlockRequest(household: s.household, purpose: .wmo))
            #expect(notThere.status == 404 && notThere.error?.message.contains("no consent block") == true)
        }
    }

    @Test("unassigning a worker purges the household from their devices and from the involvement list")
    func unassignPurgesHousehold() async throws {
        try await withServer { server in
            var s = try await PlanScenario.make(server)
            try await s.wendy.sync(server)
            #expect(s.wendy.replica.policy.involvement[s.household]?.contains { $0.user == "sam" } == true)
            _ = try await server.adminOK(AdminAPI.Done.self, "POST", "assignments/remove", AdminAPI.Assign(user: "sam", household: s.household, until: nil))
            let rounds = try await s.sam.sync(server)
            #expect(rounds.flatMap(\.response.purge).contains { $0.segment == s.segment(.regie) })
            #expect(s.sam.replica.confirmed.keys.allSatisfy { $0.household != s.household })
            try await s.wendy.sync(server)
            #expect(!(s.wendy.replica.policy.involvement[s.household] ?? []).contains { $0.user == "sam" })
            #expect(try await server.admin("POST", "assignments/remove", AdminAPI.Assign(user: "sam", household: s.household, until: nil)).status == 404)
        }
    }

    @Test("households: created on the server with a label, listed with segments and assignments")
    func householdsCreateAndList() async throws {
        try await withServer { server in
            let s = try await PlanScenario.make(server)
            let created = try await server.createHousehold(label: "Fam. Serverproef")
            try await server.assign("sam", created)
            var sam = s.sam
            try await sam.sync(server)
            #expect(sam.segment(created, .regie)?.value(of: "label") == "Fam. Serverproef")

            let list = try await server.adminOK([AdminAPI.HouseholdInfo].self, "GET", "households")
            let info = try #require(list.first { $0.id == s.household })
            #expect(info.createdBy == "wendy")
            #expect(Set(info.segments.map(\.purpose)) == [.regie, .wmo])
            #expect(info.assigned == ["sam", "wendy"])
            #expect(list.first { $0.id == created }?.createdBy == "admin")
            #expect(try await server.admin("POST", "assignments", AdminAPI.Assign(user: "sam", household: HouseholdID(UUID()), until: nil)).status == 404)
        }
    }
}

import Foundation
import GRDB
import Testing
import SyncCore
import SyncServer

/// Point 3: `POST /v1/sync` end to end over loopback, in both encodings:
/// pushes validated op by op, acknowledged after commit, snapshots for newly
/// readable segments, purpose binding on disclosure, idempotent re-push,
/// revocation.
@Suite("Sync over HTTP")
struct SyncHTTPTests {
    @Test("a household created on a device is acknowledged only once committed, and an assigned colleague gets a snapshot",
          arguments: WireEncoding.allCases)
    func createdHouseholdLandsAndAssignedColleagueGetsSnapshot(encoding: WireEncoding) async throws {
        try await withServer { server in
            let s = try await PlanScenario.make(server, encoding: encoding)
            let first = try #require(s.wendyFirstRounds.first)
            #expect(first.reply.header("content-type")?.hasPrefix(encoding.contentType) == true)
            for op in s.firstOps {
                #expect(first.response.acceptedContains(op), "op \(op.dot) \(op.payload.kindName) should be acknowledged")
            }
            #expect(first.response.rejected.isEmpty)
            #expect(s.wendy.replica.pending.isEmpty)
            #expect(first.response.stateCheck != nil, "every response that touches a segment carries the state check")
            #expect(first.response.policy?.assignments.contains { $0.household == s.household } == true, "the creator is assigned: a changed policy is sent")

            // Acknowledged means committed: another connection to the file sees every op.
            let stored = try StoreFile.count(server.databaseURL, "SELECT COUNT(*) FROM ops WHERE replica = ? AND rejection IS NULL",
                                             [Int64(s.wendy.replicaID.rawValue)])
            #expect(stored == s.firstOps.count)
            #expect(try StoreFile.count(server.databaseURL, "SELECT COUNT(*) FROM households WHERE id = ?", [Data(s.household.bytes)]) == 1)

            // Sam was assigned by an admin: his device got the REGIE snapshot with the label and the shared log.
            let regie = try #require(s.sam.segment(s.household, .regie), "Sam's device should hold the REGIE segment")
            #expect(regie.value(of: "label") == s.label)
            #expect(regie.value(of: "area") == "Proefdorp-Noord")
            #expect(s.sam.logTexts(s.household, .regie) == [s.regieLogText])
            // What the device holds matches the server's hash (no re-snapshot was needed).
            #expect(s.sam.replica.confirmed[s.segment(.regie)]?.stateHash() != nil)
            let wendyRegie = try #require(s.wendy.segment(s.household, .regie))
            #expect(wendyRegie.canonicalBytes() == regie.canonicalBytes(), "both devices hold byte-identical REGIE copies")
        }
    }

    /// Element rows are stored by an encoded key whose byte order is not dot
    /// order (counters past 127); a snapshot must still list elements in element
    /// order, so a device builds a long contact log in one pass.
    @Test("a snapshot of a long contact log arrives in element order")
    func snapshotOfALongLogIsInElementOrder() async throws {
        try await withServer { server in
            var s = try await PlanScenario.make(server)
            for i in 0..<300 {
                try s.wendy.replica.appendLog(household: s.household, purpose: .regie, kind: "telefoon", occurredAt: nil,
                                              text: "Belafspraak \(i)", wall: server.clock.now)
            }
            try await s.wendy.sync(server)
            var fresh = try await server.device("sam", initialSync: false)
            let rounds = try await fresh.sync(server)
            let regie = try #require(rounds.flatMap(\.response.snapshots).first { $0.segment == s.segment(.regie) })
            let keys = regie.elements.map(\.key)
            #expect(keys.count > 300)
            #expect(zip(keys, keys.dropFirst()).allSatisfy { $0 < $1 }, "snapshot elements in element order")
            #expect(fresh.logTexts(s.household, .regie).count == s.wendy.logTexts(s.household, .regie).count)
        }
    }

    @Test("a WMO field and WMO log written by a wmo-consulent are never disclosed to a schuldhulp device",
          arguments: WireEncoding.allCases)
    func wmoDataNeverReachesSchuldhulpDevice(encoding: WireEncoding) async throws {
        try await withServer { server in
            var s = try await PlanScenario.make(server, encoding: encoding)
            var samBodies: [Data] = []
            // Later WMO writes reach Sam's device as deltas of nothing.
            try s.wendy.replica.set(household: s.household, field: "wmo_indication", value: "Begeleiding individueel, 4 uur", wall: server.clock.now)
            try s.wendy.replica.set(household: s.household, field: "shared_goals", value: "Zelfstandig blijven wonen", wall: server.clock.now)
            try await s.wendy.sync(server)
            // A fresh Sam device (cursor 0, snapshots) and the old one (deltas).
            var samFresh = try await server.device("sam", encoding: encoding, initialSync: false)
            for round in try await samFresh.sync(server) { samBodies.append(round.reply.body) }
            for round in try await s.sam.sync(server) { samBodies.append(round.reply.body) }

            for device in [s.sam, samFresh] {
                #expect(device.replica.confirmed[s.segment(.wmo)] == nil, "no WMO segment on a schuldhulp device")
                #expect(device.segment(s.household, .regie)?.value(of: "shared_goals") == "Zelfstandig blijven wonen")
            }
            for body in samBodies {
                #expect(!body.containsBytes(s.wmoSecret))
                #expect(!body.containsBytes(s.wmoLogText))
                #expect(!body.containsBytes("Begeleiding individueel"))
                let response = encoding == .json ? try MessageJSON.decode(SyncResponse.self, from: body) : try SyncResponse(binary: Array(body))
                #expect(!response.disclosedSegments.contains { $0.purpose == .wmo })
            }
            // Positive control: a WMO reader's fresh device does receive those bytes, so the search above can find them.
            var wendyFresh = try await server.device("wendy", encoding: encoding, initialSync: false)
            let rounds = try await wendyFresh.sync(server)
            #expect(rounds.contains { $0.reply.body.containsBytes(s.wmoSecret) })
            #expect(wendyFresh.segment(s.household, .wmo)?.value(of: "wmo_request") == s.wmoSecret)
        }
    }

    @Test("a WGS op pushed by a wmo-consulent is rejected purposeNotGranted while the rest of the batch lands",
          arguments: WireEncoding.allCases)
    func ungrantedPurposeRejectedRestLands(encoding: WireEncoding) async throws {
        try await withServer { server in
            var s = try await PlanScenario.make(server, encoding: encoding)
            let wall = server.clock.now
            let regieOp = try s.wendy.replica.set(household: s.household, field: "next_contact", value: "2026-10-01", wall: wall)
            let wmoOp = try s.wendy.replica.set(household: s.household, field: "wmo_indication", value: "Huishoudelijke hulp", wall: wall)
            let wgsOp = s.wgsOpByWendy()
            var request = s.wendy.replica.makeRequest()
            request.ops.insert(wgsOp, at: 1)
            let round = try await s.wendy.roundTrip(server.http, wall: wall, request: request)
            #expect(round.response.rejection(of: wgsOp) == .purposeNotGranted)
            #expect(round.response.rejected.count == 1)
            #expect(round.response.acceptedContains(regieOp))
            #expect(round.response.acceptedContains(wmoOp))
            #expect(s.wendy.replica.pending.isEmpty)

            try await s.sam.sync(server)
            #expect(s.sam.segment(s.household, .regie)?.value(of: "next_contact") == "2026-10-01")
            #expect(s.sam.replica.confirmed[s.segment(.wgs)] == nil, "the rejected op created no WGS data")
            let rejects = try await server.rejects()
            #expect(rejects.count == 1)
            #expect(rejects.first?.reason == "purposeNotGranted")
            #expect(rejects.first?.purpose == .wgs)
            #expect(rejects.first?.user == "wendy")
            #expect(rejects.first?.device == s.wendy.id)
        }
    }

    @Test("an op with another replica's dot or another user as author is rejected invalid", arguments: WireEncoding.allCases)
    func forgedDotAndAuthorAreInvalid(encoding: WireEncoding) async throws {
        try await withServer { server in
            var s = try await PlanScenario.make(server, encoding: encoding)
            let wall = server.clock.now
            let forgedDot = handMadeOp(replica: s.sam.replicaID, counter: 40, household: s.household, purpose: .regie, author: "wendy",
                                       payload: .set(field: "area", value: "Vervalst-dorp", resolves: []), wall: wall)
            let forgedAuthor = handMadeOp(replica: s.wendy.replicaID, counter: 400, household: s.household, purpose: .regie, author: "sam",
                                          payload: .set(field: "urgent_reason", value: "Vervalste melding", resolves: []), wall: wall)
            let good = try s.wendy.replica.set(household: s.household, field: "triage", value: "meervoudig", wall: wall)
            var request = s.wendy.replica.makeRequest()
            request.ops = [forgedDot] + request.ops + [forgedAuthor]
            let round = try await s.wendy.roundTrip(server.http, wall: wall, request: request)
            #expect(round.response.rejection(of: forgedDot) == .invalid)
            #expect(round.response.rejection(of: forgedAuthor) == .invalid)
            #expect(round.response.acceptedContains(good))

            try await s.sam.sync(server)
            let regie = try #require(s.sam.segment(s.household, .regie))
            #expect(regie.value(of: "area") == "Proefdorp-Noord")
            #expect(regie.value(of: "urgent_reason") == nil)
            #expect(regie.value(of: "triage") == "meervoudig")
        }
    }

    @Test("ops breaking the schema are rejected one by one (unknown purpose or field, wrong type) and the rest lands",
          arguments: WireEncoding.allCases)
    func schemaViolationsRejectedOneByOne(encoding: WireEncoding) async throws {
        try await withServer { server in
            var s = try await PlanScenario.make(server, encoding: encoding)
            let wall = server.clock.now
            func op(_ counter: UInt64, _ purpose: Purpose, _ payload: OperationPayload) -> SyncOperation {
                handMadeOp(replica: s.wendy.replicaID, counter: counter, household: s.household, purpose: purpose, author: "wendy",
                           payload: payload, wall: wall)
            }
            let unknownPurpose = op(1, "ASTROLOGIE", .set(field: "area", value: "x", resolves: []))
            let unknownField = op(200, .regie, .set(field: "schoenmaat", value: "42", resolves: []))
            let otherPurposeField = op(201, .regie, .set(field: "wmo_request", value: "in het verkeerde segment", resolves: []))
            let wrongType = op(202, .regie, .set(field: "urgent_flag", value: "misschien", resolves: []))
            let unknownKind = op(203, .regie, .append(log: "contactlog", entry: LogEntryBody(kind: "roddel", occurredAt: wall, text: "x")))
            let good = try s.wendy.replica.set(household: s.household, field: "urgent_flag", value: "true", wall: wall)
            var request = s.wendy.replica.makeRequest()
            request.ops = [unknownPurpose, unknownField] + request.ops + [otherPurposeField, wrongType, unknownKind]
            let round = try await s.wendy.roundTrip(server.http, wall: wall, request: request)
            #expect(round.response.rejection(of: unknownPurpose) == .unknownField)
            #expect(round.response.rejection(of: unknownField) == .unknownField)
            #expect(round.response.rejection(of: otherPurposeField) == .unknownField)
            #expect(round.response.rejection(of: wrongType) == .invalid)
            #expect(round.response.rejection(of: unknownKind) == .invalid)
            #expect(round.response.acceptedContains(good))
            try await s.sam.sync(server)
            #expect(s.sam.segment(s.household, .regie)?.value(of: "urgent_flag") == "true")
            #expect(try await server.rejects().count == 5)
        }
    }

    @Test("a field rewritten offline leaves the device once: the draft is on no disk of the server, both writes are acknowledged",
          arguments: WireEncoding.allCases)
    func draftsOfAFieldNeverReachTheServer(encoding: WireEncoding) async throws {
        try await withServer { server in
            var s = try await PlanScenario.make(server, encoding: encoding)
            let draft = "Concept: bellen op maandag (nog afstemmen)"
            let final = "Afspraak: elke dinsdag bellen"
            let first = try s.wendy.replica.set(household: s.household, field: "agreements", value: draft, wall: server.clock.now)
            server.clock.advance(1000)
            let second = try s.wendy.replica.set(household: s.household, field: "agreements", value: final, wall: server.clock.now)
            let rounds = try await s.wendy.sync(server)
            let response = try #require(rounds.first?.response)
            #expect(response.acceptedContains(first) && response.acceptedContains(second))
            #expect(s.wendy.replica.pending.isEmpty)
            #expect(rounds.allSatisfy { $0.outcome.resnapshots.isEmpty })
            #expect(!StoreFile.bytesOnDisk(server.databaseURL).containsBytes(draft), "the draft is in no database or WAL page")
            try await s.sam.sync(server)
            #expect(s.sam.segment(s.household, .regie)?.value(of: "agreements") == final)
            #expect(s.sam.segment(s.household, .regie)?.canonicalBytes() == s.wendy.segment(s.household, .regie)?.canonicalBytes())
        }
    }

    @Test("a re-pushed dot gets its stored verdict; the same dot with other content is dotReuse", arguments: WireEncoding.allCases)
    func rePushIsIdempotentAndChangedContentIsDotReuse(encoding: WireEncoding) async throws {
        try await withServer { server in
            var s = try await PlanScenario.make(server, encoding: encoding)
            let wall = server.clock.now
            let op = try s.wendy.replica.set(household: s.household, field: "agreements", value: "Afspraak: elke dinsdag bellen", wall: wall)
            let wgsOp = s.wgsOpByWendy()
            var request = s.wendy.replica.makeRequest()
            request.ops.append(wgsOp)

            let (_, firstResponse) = try await postSync(server.http, token: s.wendy.token, request: request, encoding: encoding)
            let first = try #require(firstResponse)
            #expect(first.acceptedContains(op))
            #expect(first.rejection(of: wgsOp) == .purposeNotGranted)
            let opsAfterFirst = try StoreFile.count(server.databaseURL, "SELECT COUNT(*) FROM ops")
            let quarantineAfterFirst = try StoreFile.count(server.databaseURL, "SELECT COUNT(*) FROM quarantine")

            // The same request again (a lost response): the same verdicts, nothing stored twice.
            let (_, againResponse) = try await postSync(server.http, token: s.wendy.token, request: request, encoding: encoding)
            let again = try #require(againResponse)
            #expect(again.acceptedContains(op))
            #expect(again.rejection(of: wgsOp) == .purposeNotGranted)
            #expect(again.accepted == first.accepted)
            #expect(again.rejected == first.rejected)
            #expect(try StoreFile.count(server.databaseURL, "SELECT COUNT(*) FROM ops") == opsAfterFirst)
            #expect(try StoreFile.count(server.databaseURL, "SELECT COUNT(*) FROM quarantine") == quarantineAfterFirst)

            // The same dots with other content.
            var changed = op
            changed.payload = .set(field: "agreements", value: "Afspraak: nooit bellen", resolves: [])
            var changedWGS = wgsOp
            changedWGS.payload = .set(field: "wgs_notes", value: "Iets anders", resolves: [])
            request.ops = [changed, changedWGS]
            let (_, reuseResponse) = try await postSync(server.http, token: s.wendy.token, request: request, encoding: encoding)
            let reuse = try #require(reuseResponse)
            #expect(reuse.rejection(of: changed) == .dotReuse)
            #expect(reuse.rejection(of: changedWGS) == .dotReuse)
            #expect(reuse.accepted.isEmpty)

            try await s.sam.sync(server)
            #expect(s.sam.segment(s.household, .regie)?.value(of: "agreements") == "Afspraak: elke dinsdag bellen")

            // One new dot twice in one request and then with other content: the verdict the
            // request itself just stored holds for the repeats (the store reads verdicts ahead).
            let twice = try s.wendy.replica.set(household: s.household, field: "agreements", value: "Afspraak: elke donderdag bellen",
                                                wall: wall + 1)
            var twiceChanged = twice
            twiceChanged.payload = .set(field: "agreements", value: "Afspraak: nooit", resolves: [])
            request.ops = [twice, twice, twiceChanged]
            let opsBefore = try StoreFile.count(server.databaseURL, "SELECT COUNT(*) FROM ops")
            let (_, repeatResponse) = try await postSync(server.http, token: s.wendy.token, request: request, encoding: encoding)
            let repeated = try #require(repeatResponse)
            #expect(repeated.acceptedContains(twice))
            #expect(repeated.rejection(of: twiceChanged) == .dotReuse)
            #expect(try StoreFile.count(server.databaseURL, "SELECT COUNT(*) FROM ops") == opsBefore + 1)
            try await s.sam.sync(server)
            #expect(s.sam.segment(s.household, .regie)?.value(of: "agreements") == "Afspraak: elke donderdag bellen")
        }
    }

    @Test("createHousehold is accepted only for an unseen household ID", arguments: WireEncoding.allCases)
    func createHouseholdOnlyForUnseenID(encoding: WireEncoding) async throws {
        try await withServer { server in
            var s = try await PlanScenario.make(server, encoding: encoding)
            let again = handMadeOp(replica: s.sam.replicaID, counter: 77, household: s.household, purpose: .regie, author: "sam",
                                   payload: .createHousehold, wall: server.clock.now)
            var request = s.sam.replica.makeRequest()
            request.ops = [again]
            let round = try await s.sam.roundTrip(server.http, wall: server.clock.now, request: request)
            #expect(round.response.rejection(of: again) == .invalid)
            let households = try await server.adminOK([AdminAPI.HouseholdInfo].self, "GET", "households")
            #expect(households.filter { $0.id == s.household }.map(\.createdBy) == ["wendy"])
        }
    }

    @Test("the schema is sent when the device's schema hash differs; the advertised maxBody is the configured one")
    func schemaSentOnHashMismatch() async throws {
        try await withServer(maxBody: 300_000) { server in
            let device = try await server.device("wendy", role: "wmo-consulent", initialSync: false)
            var request = device.replica.makeRequest()
            request.schemaHash = ""
            let (_, unknown) = try await postSync(server.http, token: device.token, request: request, encoding: .binary)
            #expect(unknown?.schema?.contentHash == Schema.defaultHouseholdPlan().contentHash)
            #expect(unknown?.maxBody == 300_000)
            request.schemaHash = Schema.defaultHouseholdPlan().contentHash
            let (_, known) = try await postSync(server.http, token: device.token, request: request, encoding: .json)
            #expect(known != nil && known?.schema == nil)
        }
    }

    @Test("a device revoked by an admin gets 401 'revoked' with purge all at its next sync", arguments: WireEncoding.allCases)
    func revokedDeviceIsToldToPurgeAll(encoding: WireEncoding) async throws {
        try await withServer { server in
            var s = try await PlanScenario.make(server, encoding: encoding)
            _ = try await server.adminOK(AdminAPI.Done.self, "POST", "devices/\(s.wendy.id)/revoke")
            try s.wendy.replica.set(household: s.household, field: "area", value: "Na het verlies", wall: server.clock.now)
            let (reply, response) = try await postSync(server.http, token: s.wendy.token, request: s.wendy.replica.makeRequest(), encoding: encoding)
            #expect(response == nil)
            #expect(reply.status == 401)
            #expect(reply.isJSON)
            #expect(reply.error?.code == "revoked")
            #expect(reply.error?.purge == "all")
            #expect(try await server.devices().first { $0.id == s.wendy.id }?.revoked == true)
            // The write of the lost laptop did not land; other devices are unaffected.
            try await s.sam.sync(server)
            #expect(s.sam.segment(s.household, .regie)?.value(of: "area") == "Proefdorp-Noord")
            #expect(try await server.admin("POST", "devices/\(s.wendy.id)/revoke").status == 404)
        }
    }

    @Test("bodies over 1 KiB are gzipped in both directions, when the client accepts gzip")
    func gzipInBothDirections() async throws {
        try await withServer { server in
            var s = try await PlanScenario.make(server)
            let long = String(repeating: "Gesprek over de dagbesteding en het vervoer. ", count: 60)
            let op = try s.wendy.replica.appendLog(household: s.household, purpose: .regie, kind: "overleg", occurredAt: nil,
                                                   text: long, wall: server.clock.now)
            let request = s.wendy.replica.makeRequest()
            #expect(request.binaryEncoded().count > Gzip.threshold)
            // postSync gzips a request body over 1 KiB and sends Content-Encoding: gzip.
            let (_, pushed) = try await postSync(server.http, token: s.wendy.token, request: request, encoding: .binary, gzipRequest: true)
            #expect(try #require(pushed).acceptedContains(op))

            let fresh = try await server.device("sam", initialSync: false)
            let (zipped, zippedResponse) = try await postSync(server.http, token: fresh.token, request: fresh.replica.makeRequest(),
                                                              encoding: .binary, acceptGzip: true)
            #expect(zipped.wasGzip, "a response over 1 KiB is gzipped for a client that accepts it")
            let (plain, plainResponse) = try await postSync(server.http, token: fresh.token, request: fresh.replica.makeRequest(),
                                                            encoding: .binary, acceptGzip: false)
            #expect(!plain.wasGzip)
            #expect(plain.body.count > Gzip.threshold)
            #expect(try #require(zippedResponse).snapshots == (try #require(plainResponse)).snapshots)
            #expect(plainResponse?.snapshots.contains { patch in
                patch.elements.contains { if case .logEntry(_, let entry) = $0 { return entry.body.text == long } else { return false } }
            } == true)
        }
    }

    @Test("cursor 0 gets snapshots of current state, never history, superseded values or the device's own ops",
          arguments: WireEncoding.allCases)
    func pullsAreStateNotHistory(encoding: WireEncoding) async throws {
        try await withServer { server in
            var s = try await PlanScenario.make(server, encoding: encoding)
            for value in ["Oost", "West", "Zuid", "Midden"] {
                server.clock.advance(1000)
                try s.wendy.replica.set(household: s.household, field: "area", value: "Proefdorp-\(value)", wall: server.clock.now)
                try await s.wendy.sync(server)
            }
            // Wendy's next sync echoes none of her own writes.
            let echo = try await s.wendy.roundTrip(server.http, wall: server.clock.now)
            #expect(echo.response.deltas.allSatisfy { $0.elements.isEmpty }, "no own ops echoed: \(echo.response.deltas)")
            #expect(echo.response.snapshots.isEmpty)

            var fresh = try await server.device("sam", encoding: encoding, initialSync: false)
            let round = try await fresh.roundTrip(server.http, wall: server.clock.now)
            #expect(round.response.deltas.isEmpty, "cursor 0 gets snapshots, not deltas")
            let patch = try #require(round.response.snapshots.first { $0.segment == s.segment(.regie) })
            let areas = patch.elements.compactMap { element -> [String]? in
                if case .field("area", let register) = element { return register.values.map(\.value) }
                return nil
            }
            #expect(areas == [["Proefdorp-Midden"]], "only the current value, no superseded ones")

            // A change by Sam reaches Wendy as a delta with only Sam's value.
            try s.sam.replica.set(household: s.household, field: "next_evaluation_date", value: "2027-01-15", wall: server.clock.now)
            try await s.sam.sync(server)
            let delta = try await s.wendy.roundTrip(server.http, wall: server.clock.now)
            let elements = delta.response.deltas.flatMap(\.elements)
            #expect(elements.count == 1)
            if case .field(let name, let register) = elements.first {
                #expect(name == "next_evaluation_date")
                #expect(register.values.map(\.author) == ["sam"])
            } else {
                Issue.record("expected one field delta, got \(elements)")
            }
        }
    }

    @Test("a small response limit pages the pull; every page carries at least one item and the cursor never skips",
          arguments: WireEncoding.allCases)
    func pagingCarriesAtLeastOneItem(encoding: WireEncoding) async throws {
        try await withServer { server in
            var wendy = try await server.device("wendy", role: "wmo-consulent", encoding: encoding)
            var created: [HouseholdID] = []
            for index in 0..<4 {
                let id = HouseholdID(UUID())
                _ = try wendy.replica.createHousehold(id: id, label: "Fam. Pagina \(index)", wall: server.clock.now)
                try wendy.replica.set(household: id, field: "wmo_request", value: "Vraag \(index)", wall: server.clock.now)
                created.append(id)
            }
            try await wendy.sync(server)
            var fresh = try await server.device("wendy", encoding: encoding, initialSync: false)
            var pages = 0
            var received = Set<SegmentKey>()
            for _ in 0..<40 {
                let request = fresh.replica.makeRequest(limit: 1)
                let round = try await fresh.roundTrip(server.http, wall: server.clock.now, request: request)
                pages += 1
                #expect(round.response.snapshots.count + round.response.deltas.count >= 1 || !round.response.more,
                        "a page with more: true carries at least one item")
                received.formUnion(round.response.snapshots.map(\.segment))
                if !round.outcome.needsAnotherRound { break }
            }
            #expect(received.count == created.count * 2, "every REGIE and WMO segment arrived")
            #expect(pages >= created.count * 2, "limit 1 sends one segment per page")
            for id in created {
                #expect(fresh.segment(id, .wmo)?.value(of: "wmo_request") != nil)
                #expect(fresh.segment(id, .regie)?.value(of: "label")?.hasPrefix("Fam. Pagina") == true)
            }
        }
    }

    @Test("every assigned worker sees who else is involved; a sensitive purpose shows only 'a professional'")
    func involvementListRespectsSensitivePurposes() async throws {
        try await withServer { server in
            let s = try await PlanScenario.make(server)
            try await server.addUser("vera", role: "veilig-thuis", contact: "06-00000000 (Veilig Thuis Testregio)")
            try await server.assign("vera", s.household)
            var sam = s.sam
            let round = try await sam.roundTrip(server.http, wall: server.clock.now)
            let involved = try #require(round.response.policy?.involvement[s.household], "the involvement changed, so the policy is sent")
            let wendy = try #require(involved.first { $0.user == "wendy" })
            #expect(!wendy.restricted)
            #expect(wendy.role == "wmo-consulent")
            #expect(Set(wendy.purposes) == [.regie, .wmo])
            let vera = try #require(involved.first { $0.user == "vera" })
            #expect(vera.restricted)
            #expect(vera.role == "professional")
            #expect(vera.purposes.isEmpty, "a viewer without VEIL must not learn that VEIL is involved")
            #expect(vera.contact == "06-00000000 (Veilig Thuis Testregio)")
            #expect(!involved.contains { $0.user == "sam" }, "the viewer is not listed as someone else")
        }
    }
}

import Foundation
import GRDB
import Testing
import SyncCore
import SyncServer

/// Point 7: the NEN 7513-style audit log: rows for disclosures, writes and
/// admin actions (IDs and purpose codes, never content), offline reads
/// uploaded by devices, and `verify` catching altered, removed and
/// truncated rows.
@Suite("Audit")
struct AuditTests {
    /// The chain's bytes are a stored format: a server that hashed rows any
    /// other way would call every deployment's existing log altered.
    @Test("the audit chain's HMACs for a fixed key and clock are the ones every earlier version wrote")
    func auditChainBytesAreStable() async throws {
        let directory = makeTemporaryDirectory("audit-golden")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(at: directory) }
        let keyURL = directory.appendingPathComponent("audit.key")
        try Data((0..<32).map { UInt8($0 &* 7 &+ 1) }).write(to: keyURL)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: keyURL.path)
        let server = try await TestServer.start(directory: directory)
        server.clock.advance(1_234)
        #expect(try await server.admin("POST", "users", AdminAPI.AddUser(name: "bas", role: "buurtcoach", contact: nil)).status == 201)
        await server.stop()
        let macs = try StoreFile.read(server.databaseURL) { db in
            try Row.fetchAll(db, sql: "SELECT action, mac FROM audit ORDER BY seq").map { row in
                (row["action"] as String) + " " + (row["mac"] as Data).map { String(format: "%02x", $0) }.joined()
            }
        }
        #expect(macs == ["bootstrapAdmin 8de0b7d53f179a55f2418c09e12836a02593b1907d292172ce5686010ded1498",
                         "userAdd 5f312b842efff07dd8e7c4ed1743aa21e91e14a0bebde0fd65d88ebbc2ebecbd"])
    }

    @Test("disclosures, writes and admin actions are audited with IDs and purposes, never content, in a gapless sequence")
    func auditRowsForDisclosureWriteAndAdmin() async throws {
        try await withServer { server in
            let s = try await PlanScenario.make(server)
            let rows = try await server.audit()
            #expect(rows.map(\.seq) == Array(1...Int64(rows.count)), "gapless sequence from 1")
            let h = s.household.description

            // Writes by Wendy's device: every accepted op is counted and named by its dot, one row per run per segment.
            let writes = rows.filter { $0.action == "write" && $0.household == h }
            #expect(writes.reduce(0) { $0 + $1.count } == s.firstOps.count)
            #expect(writes.allSatisfy { $0.actor == "wendy" && $0.device == s.wendy.id })
            for op in s.firstOps {
                #expect(writes.contains { $0.purpose == op.segment.purpose.rawValue && $0.detail.contains(" \(op.dot.counter):") || $0.detail.contains("=\(op.dot.counter):") },
                        "op \(op.dot) is named in an audit row")
            }
            #expect(Set(writes.map(\.purpose)) == ["REGIE", "WMO"])
            #expect(rows.contains { $0.action == "createHousehold" && $0.household == h && $0.actor == "wendy" })

            // Disclosures to Sam's device: REGIE only, with the number of fields.
            let toSam = rows.filter { $0.action == "disclose" && $0.device == s.sam.id && $0.household == h }
            #expect(!toSam.isEmpty)
            #expect(toSam.allSatisfy { $0.actor == "sam" && $0.purpose == "REGIE" && $0.count > 0 })
            #expect(toSam.contains { $0.detail.hasPrefix("snapshot") })
            // WMO was never disclosed to anyone but its writer's own device, which was sent nothing it wrote itself.
            #expect(!rows.contains { $0.action == "disclose" && $0.purpose == "WMO" && $0.device != s.wendy.id })

            // Admin actions, by the admin's name.
            #expect(rows.contains { $0.action == "userAdd" && $0.actor == "admin" && $0.detail.contains("user=sam") })
            #expect(rows.contains { $0.action == "enrollCode" && $0.actor == "admin" })
            #expect(rows.contains { $0.action == "assign" && $0.actor == "admin" && $0.household == h && $0.detail.contains("sam") })
            #expect(rows.contains { $0.action == "enroll" && $0.actor == "sam" && $0.device == s.sam.id })

            // No content anywhere in the audit log.
            for row in rows {
                for text in [s.wmoSecret, s.wmoLogText, s.regieLogText, s.label, "Proefdorp-Noord"] {
                    #expect(!row.detail.contains(text) && !row.actor.contains(text), "audit row \(row.seq) holds content")
                }
            }
            // Querying the audit log is itself audited.
            let again = try await server.audit(household: s.household)
            #expect(again.allSatisfy { $0.household == h })
            #expect(try await server.audit().contains { $0.action == "auditQuery" && $0.actor == "admin" })
            #expect(try await server.verifyAudit().ok)
        }
    }

    @Test("offline reads uploaded by a device are stored once, acknowledged, and gaps are flagged")
    func offlineReadsDeduplicatedAndGapsFlagged() async throws {
        try await withServer { server in
            var s = try await PlanScenario.make(server)
            for action in ["show", "logList", "export"] {
                s.wendy.replica.recordRead(household: s.household, purpose: .wmo, action: action, count: 3, wall: server.clock.now)
            }
            let events = s.wendy.replica.auditQueue
            #expect(events.count == 3)
            let round = try await s.wendy.roundTrip(server.http, wall: server.clock.now)
            #expect(round.response.auditAck == 3)
            #expect(s.wendy.replica.auditQueue.isEmpty)

            // The same events again (a lost response): no new rows.
            var request = s.wendy.replica.makeRequest()
            request.auditEvents = events
            let (_, replayed) = try await postSync(server.http, token: s.wendy.token, request: request, encoding: .binary)
            #expect(replayed?.auditAck == 3)
            var rows = try await server.audit(household: s.household)
            let reads = rows.filter { $0.action == "offlineRead" }
            #expect(reads.count == 3)
            #expect(reads.allSatisfy { $0.actor == "wendy" && $0.device == s.wendy.id && $0.purpose == "WMO" && $0.count == 3 })
            #expect(Set(reads.compactMap { $0.detail.split(separator: " ").first.map(String.init) }) == ["show", "logList", "export"])

            // Event 6 without 4 and 5: stored, flagged as a gap, not acknowledged past 3.
            let gapEvent = AuditEvent(deviceSeq: 6, prevHash: events[2].chainHash, household: s.household, purpose: .wmo,
                                      action: "show", at: server.clock.now, count: 1)
            request.auditEvents = [gapEvent]
            let (_, gapped) = try await postSync(server.http, token: s.wendy.token, request: request, encoding: .binary)
            #expect(gapped?.auditAck == 3)
            rows = try await server.audit()
            #expect(rows.contains { $0.action == "offlineReadGap" && $0.device == s.wendy.id && $0.detail.contains("4") })
            #expect(rows.filter { $0.action == "offlineRead" }.count == 4)
        }
    }

    @Test("an offline read's purpose is kept only if the schema knows it, and its count is clamped: a device cannot write text into the audit log")
    func offlineReadsKeepOnlyCodes() async throws {
        try await withServer { server in
            let s = try await PlanScenario.make(server)
            let smuggled = "Mevr. Testpersoon, geheim (fictief)"
            var request = s.wendy.replica.makeRequest()
            request.auditEvents = [AuditEvent(deviceSeq: 1, prevHash: Digest([UInt8](repeating: 0, count: 16)), household: s.household,
                                              purpose: Purpose(smuggled), action: "show", at: server.clock.now, count: -5)]
            // JSON: the binary form cannot carry a negative count.
            let (_, response) = try await postSync(server.http, token: s.wendy.token, request: request, encoding: .json)
            #expect(response?.auditAck == 1)
            let reads = try await server.audit(household: s.household).filter { $0.action == "offlineRead" && $0.device == s.wendy.id }
            #expect(reads.count == 1)
            #expect(reads.first?.purpose == nil || reads.first?.purpose == "")
            #expect(reads.first?.count == 0)
            #expect(reads.first?.detail.contains("unknownPurpose") == true)
            #expect(!StoreFile.bytesOnDisk(server.databaseURL).containsBytes(smuggled), "the text is nowhere in the store")
        }
    }

    @Test("an offline read under a number already stored is kept once, marked reusedSeq (a device restored from a backup); a repeat of either is not")
    func offlineReadsUnderAReusedNumberAreKept() async throws {
        try await withServer { server in
            let s = try await PlanScenario.make(server)
            let zero = Digest([UInt8](repeating: 0, count: 16))
            let first = AuditEvent(deviceSeq: 1, prevHash: zero, household: s.household, purpose: .wmo, action: "show", at: server.clock.now, count: 2)
            let other = AuditEvent(deviceSeq: 1, prevHash: zero, household: s.household, purpose: .wmo, action: "logList", at: server.clock.now, count: 4)
            for events in [[first], [first], [other], [other]] {
                var request = s.wendy.replica.makeRequest()
                request.auditEvents = events
                let (_, response) = try await postSync(server.http, token: s.wendy.token, request: request, encoding: .binary)
                #expect(response?.auditAck == 1)
            }
            let reads = try await server.audit(household: s.household).filter { $0.action == "offlineRead" && $0.device == s.wendy.id }
            #expect(reads.map(\.detail.first) == ["s", "l"], "\(reads.map(\.detail))")
            #expect(reads.last?.detail.hasSuffix("reusedSeq") == true)
            #expect(reads.first?.detail.contains("reusedSeq") == false)
        }
    }

    /// Runs the plan scenario on a data directory, stops the server (which anchors the head) and returns the directory.
    private func preparedStore() async throws -> (URL, TestClock) {
        let directory = makeTemporaryDirectory("audit")
        let clock = TestClock()
        let server = try await TestServer.start(directory: directory, clock: clock)
        _ = try await PlanScenario.make(server)
        let verification = try await server.verifyAudit()
        #expect(verification.ok, "a fresh chain verifies: \(verification.problem ?? "")")
        await server.stop()
        return (directory, clock)
    }

    private func verifyAfterRestart(_ directory: URL, _ clock: TestClock) async throws -> AuditVerification {
        let server = try await TestServer.start(directory: directory, clock: clock)
        let verification = try await server.verifyAudit()
        await server.stop()
        return verification
    }

    @Test("verify detects an audit row altered in the database file while the server was stopped")
    func verifyDetectsAlteredRow() async throws {
        let (directory, clock) = try await preparedStore()
        defer { try? FileManager.default.removeItem(at: directory) }
        let database = directory.appendingPathComponent("fieldsync.sqlite")
        let untouched = try await verifyAfterRestart(directory, clock)
        #expect(untouched.ok)
        #expect(untouched.anchorsChecked >= 1, "the shutdown anchored the head")

        try StoreFile.write(database) { db in
            try db.execute(sql: "UPDATE audit SET actor = 'iemand-anders' WHERE seq = 5")
        }
        let verification = try await verifyAfterRestart(directory, clock)
        #expect(!verification.ok)
        #expect(verification.problem?.contains("altered") == true, "\(verification.problem ?? "no problem reported")")
        #expect(verification.problem?.contains("5") == true)
    }

    @Test("verify detects a deleted audit row inside the chain")
    func verifyDetectsDeletedRow() async throws {
        let (directory, clock) = try await preparedStore()
        defer { try? FileManager.default.removeItem(at: directory) }
        try StoreFile.write(directory.appendingPathComponent("fieldsync.sqlite")) { db in
            try db.execute(sql: "DELETE FROM audit WHERE seq = 7")
        }
        let verification = try await verifyAfterRestart(directory, clock)
        #expect(!verification.ok)
        #expect(verification.problem?.contains("missing") == true, "\(verification.problem ?? "no problem reported")")
    }

    @Test("verify detects a deleted row renumbered to close the gap (the HMAC chain breaks)")
    func verifyDetectsRenumberedDeletion() async throws {
        let (directory, clock) = try await preparedStore()
        defer { try? FileManager.default.removeItem(at: directory) }
        try StoreFile.write(directory.appendingPathComponent("fieldsync.sqlite")) { db in
            try db.execute(sql: "DELETE FROM audit WHERE seq = 7")
            try db.execute(sql: "UPDATE audit SET seq = seq - 1 WHERE seq > 7")
        }
        let verification = try await verifyAfterRestart(directory, clock)
        #expect(!verification.ok, "\(verification)")
    }

    @Test("verify detects truncation after an anchored head (anchors are written at shutdown to DATA/audit.anchors)")
    func verifyDetectsTruncationAfterAnchor() async throws {
        let (directory, clock) = try await preparedStore()
        defer { try? FileManager.default.removeItem(at: directory) }
        let anchors = try String(contentsOf: directory.appendingPathComponent("audit.anchors"), encoding: .utf8)
        let lastAnchor = try #require(anchors.split(separator: "\n").last?.split(separator: " ").first.flatMap { Int64($0) })
        #expect(FileSecurity.mode(of: directory.appendingPathComponent("audit.anchors")).map { $0 & 0o777 } == 0o600)
        let database = directory.appendingPathComponent("fieldsync.sqlite")
        let head = try StoreFile.read(database) { db in try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM audit") ?? 0 }
        #expect(head == lastAnchor, "the anchored head is the last row at shutdown")

        // Cut the tail: what remains is a valid prefix of the chain, so only the anchor can tell.
        try StoreFile.write(database) { db in
            try db.execute(sql: "DELETE FROM audit WHERE seq > ?", arguments: [head - 3])
        }
        let verification = try await verifyAfterRestart(directory, clock)
        #expect(!verification.ok)
        #expect(verification.problem?.contains("truncated") == true, "\(verification.problem ?? "no problem reported")")
        #expect(verification.rows == head - 3)
    }
}

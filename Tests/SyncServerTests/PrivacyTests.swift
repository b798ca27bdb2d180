import Foundation
import Testing
import SyncCore
import SyncServer

/// DESIGN §5/§6: no response, error or log line names personal data, except
/// the sync responses that legitimately disclose it to a reader.
@Suite("No personal data outside legitimate disclosures")
struct PrivacyTests {
    @Test("planted contact-log and field texts appear in no admin answer, error, metric or log line, and in no sync response to a non-reader")
    func plantedTextNeverLeaks() async throws {
        let logs = LogCapture()
        try await withServer(logs: logs) { server in
            var s = try await PlanScenario.make(server)
            let rejectedText = "Schuld bij de fictieve Proefbank van 1234 euro"
            let veilText = "Signaal: zorgen om de veiligheid van kind Testkindje"
            let planted = [s.wmoSecret, s.wmoLogText, rejectedText, veilText]
            var shouldNotContain: [(String, Data)] = []   // (what, bytes)

            // A rejected op with content: quarantined, but its text goes nowhere else.
            let wgs = s.wgsOpByWendy(value: rejectedText)
            var request = s.wendy.replica.makeRequest()
            request.ops = [wgs]
            let rejectedRound = try await s.wendy.roundTrip(server.http, wall: server.clock.now, request: request)
            #expect(rejectedRound.response.rejection(of: wgs) == .purposeNotGranted)
            shouldNotContain.append(("sync response with a rejection", rejectedRound.reply.body))

            // A VEIL worker writes a sensitive signal; Sam is assigned but has no VEIL.
            var vera = try await server.device("vera", role: "veilig-thuis", initialSync: false)
            try await server.assign("vera", s.household)
            try await vera.sync(server)
            try vera.replica.appendLog(household: s.household, purpose: .veil, log: "signals", kind: "signaal", occurredAt: nil,
                                       text: veilText, wall: server.clock.now)
            try await vera.sync(server)

            // Sam's syncs: REGIE only.
            for round in try await s.sam.sync(server) { shouldNotContain.append(("sync response to Sam", round.reply.body)) }
            var samFresh = try await server.device("sam", initialSync: false)
            for round in try await samFresh.sync(server) { shouldNotContain.append(("fresh sync response to Sam", round.reply.body)) }

            // Every admin listing, with conflicts present.
            try s.wendy.replica.set(household: s.household, field: "wmo_indication", value: s.wmoSecret + " (a)", wall: server.clock.now)
            var wendy2 = try await server.device("wendy")
            try wendy2.replica.set(household: s.household, field: "wmo_indication", value: s.wmoSecret + " (b)", wall: server.clock.now)
            try await s.wendy.sync(server)
            try await wendy2.sync(server)
            for path in ["users", "devices", "households", "rejects", "audit?limit=100000", "audit/verify", "roles",
                         "households/\(s.household)/access"] {
                let reply = try await server.admin("GET", path)
                #expect(reply.status == 200, "GET \(path): \(reply)")
                shouldNotContain.append(("GET /v1/admin/\(path)", reply.body))
            }
            let conflicts = try await server.admin("POST", "conflicts/query", ["household": s.household.description])
            #expect(conflicts.status == 200)
            #expect(try conflicts.decode([AdminAPI.ConflictEntry].self).contains { $0.name == "wmo_indication" })
            shouldNotContain.append(("conflicts without break-glass", conflicts.body))

            // Errors, including ones whose request bodies carry the planted text.
            var errors: [HTTPReply] = []
            errors.append(try await server.http.send("POST", "/v1/enroll", body: Data(#"{"code": "\#(s.wmoSecret)"}"#.utf8),
                                                     headers: ["Content-Type": "application/json"]))
            errors.append(try await server.http.send("POST", "/v1/enroll", body: Data(#"{"code": 5, "name": "\#(s.wmoLogText)"}"#.utf8),
                                                     headers: ["Content-Type": "application/json"]))
            errors.append(try await server.http.send("POST", "/v1/sync", body: Data(#"{"version": "\#(s.wmoSecret)"}"#.utf8),
                                                     token: s.wendy.token, headers: ["Content-Type": "application/json"]))
            errors.append(try await server.http.send("POST", "/v1/sync", body: Data(s.wmoSecret.utf8), token: s.wendy.token,
                                                     headers: ["Content-Type": "application/x-fieldsync"]))
            errors.append(try await server.http.send("POST", "/v1/sync", body: Data(), token: s.wmoSecret))
            errors.append(try await server.admin("POST", "users", ["name": s.wmoSecret, "role": "buurtcoach"]))
            errors.append(try await server.admin("POST", "conflicts/query", ["household": s.household.description, "breakGlass": "kort"]))
            errors.append(try await server.admin("POST", "conflicts/resolve",
                                                 AdminAPI.Resolve(household: s.household, field: "wmo_indication", pick: nil,
                                                                  value: rejectedText, breakGlass: nil)))
            for reply in errors {
                #expect((400..<500).contains(reply.status), "\(reply)")
                #expect(reply.error != nil, "error shape: \(reply)")
                shouldNotContain.append(("error \(reply.status)", reply.body))
            }
            shouldNotContain.append(("metrics", try await server.http.send("GET", "/metrics").body))
            shouldNotContain.append(("health", try await server.http.send("GET", "/health").body))

            for (what, body) in shouldNotContain {
                for text in planted where body.containsBytes(text) {
                    Issue.record("\(what) contains planted personal text \"\(text.prefix(20))…\"")
                }
            }
            #expect(shouldNotContain.count > 20)

            // Positive control: the REGIE text does reach Sam (a legitimate disclosure), and WMO text reaches Wendy's new device.
            #expect(samFresh.logTexts(s.household, .regie).contains(s.regieLogText))
            #expect(wendy2.segment(s.household, .wmo)?.value(of: "wmo_request") == s.wmoSecret)
            #expect(vera.logTexts(s.household, .veil, log: "signals") == [veilText])
        }
        // No log line at any level, from the server, Hummingbird or the store, carries planted text.
        let lines = logs.all
        #expect(!lines.isEmpty, "the capture saw the server's log lines")
        for line in lines {
            for text in ["Mevrouw Proefpersoon", "Fictiefje", "Proefbank", "Testkindje", "Proefdorp", "Fam. Testhuis"] where line.contains(text) {
                Issue.record("log line contains personal text: \(line.prefix(200))")
            }
        }
    }
}

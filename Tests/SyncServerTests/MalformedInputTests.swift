import Foundation
import GRDB
import Testing
import SyncCore
import SyncServer

/// Point 5 (required by issue 4): malformed requests of every kind get a 4xx
/// with `{"error": {"code", "message"}}`, never a 500, and change nothing
/// stored. More than 1,000 random and mutated bodies go to `/v1/sync`,
/// `/v1/enroll` and the admin endpoints; afterwards the server is healthy and
/// every table of the store is byte-identical.
@Suite("Malformed input")
struct MalformedInputTests {
    /// One request the server must refuse.
    struct Case: Sendable {
        var label: String
        var method = "POST"
        var path: String
        var body: Data?
        var token: String?
        var headers: [String: String] = [:]
        /// A specific status, or nil for any 4xx.
        var status: Int?
    }

    static let maxBody = 16 * 1024

    // MARK: The oracle for "malformed"

    /// Whether the SyncCore codec reads this body as a sync request within the
    /// protocol's bounds: such a body is well-formed (its ops may still be
    /// rejected one by one), so it is not sent as a malformed case.
    static func isWellFormedSync(_ body: Data, json: Bool) -> Bool {
        let request: SyncRequest
        if json {
            guard let decoded = try? MessageJSON.decode(SyncRequest.self, from: body) else { return false }
            request = decoded
        } else {
            guard let decoded = try? SyncRequest(binary: Array(body)) else { return false }
            request = decoded
        }
        return withinBounds(request)
    }

    /// The protocol's bounds on a decoded request: the version, a positive
    /// limit, and the numbers the server keeps as SQLite integers (cursor,
    /// dot counters, device audit sequences). Anything else a decodable
    /// request carries is judged op by op (e.g. a carried context claiming
    /// unseen dots is rejected `invalid`), so it is not malformed.
    static func withinBounds(_ request: SyncRequest) -> Bool {
        let big = UInt64(Int64.max)
        guard request.version == syncProtocolVersion, request.limit > 0 else { return false }
        guard request.cursor.seq <= big, (request.cursor.resumeSeq ?? 0) <= big else { return false }
        guard request.ops.allSatisfy({ $0.dot.counter <= big && ($0.absorbs ?? []).allSatisfy { $0 <= big } }) else { return false }
        return request.auditEvents.allSatisfy { $0.deviceSeq <= big }
    }

    // MARK: Mutations

    static func truncated(_ bytes: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &rng)))
    }

    static func bitFlipped(_ bytes: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var copy = bytes
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            copy[Int.random(in: 0..<copy.count, using: &rng)] ^= UInt8(1) << UInt8.random(in: 0...7, using: &rng)
        }
        return copy
    }

    static func byteMutated(_ bytes: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var copy = bytes
        switch Int.random(in: 0..<4, using: &rng) {
        case 0:  // overwrite bytes
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                copy[Int.random(in: 0..<copy.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
        case 1:  // insert bytes
            let at = Int.random(in: 0...copy.count, using: &rng)
            copy.insert(contentsOf: randomBytes(Int.random(in: 1...16, using: &rng), &rng), at: at)
        case 2:  // delete a range
            let start = Int.random(in: 0..<copy.count, using: &rng)
            let end = min(copy.count, start + Int.random(in: 1...12, using: &rng))
            copy.removeSubrange(start..<end)
        default:  // a valid prefix, then garbage
            copy = Array(copy.prefix(Int.random(in: 0..<copy.count, using: &rng))) + randomBytes(Int.random(in: 1...64, using: &rng), &rng)
        }
        return copy
    }

    static func randomBytes(_ count: Int, _ rng: inout SplitMix64) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }

    /// A JSON value of another type than `original` (never null, never the same type).
    static func wrongTyped(_ original: Any, _ rng: inout SplitMix64) -> Any {
        let strings: [Any] = ["zeker-geen-getal", "", "18446744073709551616", "-1", "{}"]
        let numbers: [Any] = [12345, -1, 1.5, 1e300, 18_446_744_073_709_551_615 as UInt64, 0]
        let others: [Any] = [true, false, [Any](), ["a", 1] as [Any], [String: Any](), ["x": 1] as [String: Any]]
        var pool: [Any]
        switch original {
        case is String: pool = numbers + others
        case is NSNumber: pool = strings + [[Any](), [String: Any](), ["x": "y"] as [String: Any]]
        case is [Any]: pool = strings + numbers + [true, [String: Any]()]
        case is [String: Any]: pool = strings + numbers + [true, [Any]()]
        default: pool = strings + numbers + others
        }
        return pool[Int.random(in: 0..<pool.count, using: &rng)]
    }

    /// Replaces one random node of a JSON tree (below the top) with a value of another type.
    static func mutateTree(_ value: Any, depth: Int, _ rng: inout SplitMix64) -> Any {
        if var object = value as? [String: Any], !object.isEmpty {
            let key = object.keys.sorted()[Int.random(in: 0..<object.count, using: &rng)]
            let child = object[key]!
            let descend = (child is [String: Any] || child is [Any]) && Bool.random(using: &rng)
            object[key] = descend ? mutateTree(child, depth: depth + 1, &rng) : wrongTyped(child, &rng)
            return object
        }
        if var array = value as? [Any], !array.isEmpty {
            let index = Int.random(in: 0..<array.count, using: &rng)
            let child = array[index]
            let descend = (child is [String: Any] || child is [Any]) && Bool.random(using: &rng)
            array[index] = descend ? mutateTree(child, depth: depth + 1, &rng) : wrongTyped(child, &rng)
            return array
        }
        return wrongTyped(value, &rng)
    }

    static func jsonData(_ value: Any) -> Data? {
        guard JSONSerialization.isValidJSONObject(value) else { return nil }
        return try? JSONSerialization.data(withJSONObject: value)
    }

    // MARK: Case generators

    /// Malformed bodies for `/v1/sync` from a valid request, with a valid device token.
    static func syncCases(base: SyncRequest, token: String, adminToken: String, usedCode: String,
                          rng: inout SplitMix64, skippedWellFormed: inout [Case]) -> [Case] {
        var cases: [Case] = []
        let binary = base.binaryEncoded()
        let json = Array(MessageJSON.encode(base))
        let jsonTree = try! JSONSerialization.jsonObject(with: Data(json))
        func add(_ label: String, _ body: [UInt8], json isJSON: Bool, headers: [String: String] = [:], status: Int? = nil) {
            var all = ["Content-Type": isJSON ? "application/json" : "application/x-fieldsync"]
            for (key, value) in headers { all[key] = value }
            let item = Case(label: label, path: "/v1/sync", body: Data(body), token: token, headers: all, status: status)
            if status == nil, isWellFormedSync(Data(body), json: isJSON) {
                skippedWellFormed.append(item)
            } else {
                cases.append(item)
            }
        }
        func attempts(_ count: Int, _ make: (inout SplitMix64) -> Void) {
            let before = cases.count
            var tries = 0
            while cases.count < before + count, tries < count * 20 {
                make(&rng)
                tries += 1
            }
        }

        attempts(120) { add("random binary", randomBytes(Int.random(in: 0...900, using: &$0), &$0), json: false) }
        attempts(40) { add("random with FQ magic", [0x46, 0x51] + randomBytes(Int.random(in: 0...300, using: &$0), &$0), json: false) }
        attempts(40) { add("random as JSON", randomBytes(Int.random(in: 0...400, using: &$0), &$0), json: true) }
        attempts(100) { add("truncated binary", truncated(binary, &$0), json: false) }
        attempts(160) { add("bit-flipped binary", bitFlipped(binary, &$0), json: false) }
        attempts(100) { add("byte-mutated binary", byteMutated(binary, &$0), json: false) }
        attempts(150) { rng in
            guard let body = jsonData(mutateTree(jsonTree, depth: 0, &rng)) else { return }
            add("wrong JSON type", Array(body), json: true)
        }
        attempts(40) { add("truncated JSON", truncated(json, &$0), json: true) }
        attempts(30) { add("byte-mutated JSON", byteMutated(json, &$0), json: true) }
        for text in ["", "{}", "[]", "null", "true", "0", "\"sync\"", "{\"version\":1}", "[{\"version\":1}]",
                     "{\"version\":1,\"cursor\":{},\"held\":{}}", "{\"ops\":[{}]}", "{\"version\":\"1\"}"] {
            add("JSON \(text)", Array(text.utf8), json: true)
        }
        add("binary sent as JSON", binary, json: true)
        add("JSON sent as binary", json, json: false)

        // Numbers out of range, versions and limits the protocol does not allow.
        func variant(_ label: String, binary: Bool = true, _ change: (inout SyncRequest) -> Void) {
            var request = base
            change(&request)
            if binary { add(label + " (binary)", request.binaryEncoded(), json: false, status: nil) }
            add(label + " (JSON)", Array(MessageJSON.encode(request)), json: true, status: nil)
        }
        variant("protocol version 2 (retired)") { $0.version = 2 }
        variant("protocol version 4 (newer)") { $0.version = 4 }
        variant("protocol version 0") { $0.version = 0 }
        variant("limit 0") { $0.limit = 0 }
        // The binary form has no negative numbers.
        variant("negative limit", binary: false) { $0.limit = -5 }
        variant("cursor beyond Int64") { $0.cursor.seq = .max }
        variant("resume cursor beyond Int64") { $0.cursor = SyncCursor(seq: 1, resumeAfter: base.ops.first?.segment, resumeSeq: .max) }
        variant("op counter beyond Int64") { $0.ops[0].dot.counter = UInt64(Int64.max) + 1 }
        variant("op counter UInt64.max") { $0.ops[$0.ops.count - 1].dot.counter = .max }
        variant("absorbed counter UInt64.max", binary: false) { $0.ops[0].absorbs = [.max] }
        variant("absorbed counters of another op", binary: false) { $0.ops[0].absorbs = [1, 2, 3] }
        variant("audit event sequence beyond Int64") {
            $0.auditEvents = [AuditEvent(deviceSeq: .max, prevHash: Digest([UInt8](repeating: 0, count: 16)),
                                         household: base.ops[0].segment.household, purpose: .regie, action: "show", at: 1, count: 1)]
        }

        // Bodies over the configured limit, and gzip that is bad or inflates too far.
        for size in [maxBody + 1, maxBody * 2, maxBody * 8] {
            cases.append(Case(label: "oversized \(size)", path: "/v1/sync", body: Data(randomBytes(size, &rng)), token: token,
                              headers: ["Content-Type": "application/x-fieldsync"], status: 413))
        }
        let bomb = Gzip.compress([UInt8](repeating: 0, count: maxBody * 20))
        cases.append(Case(label: "gzip bomb", path: "/v1/sync", body: Data(bomb), token: token,
                          headers: ["Content-Type": "application/x-fieldsync", "Content-Encoding": "gzip"], status: 413))
        for index in 0..<12 {
            let body: [UInt8]
            switch index % 3 {
            case 0: body = randomBytes(Int.random(in: 1...500, using: &rng), &rng)
            case 1: body = truncated(Gzip.compress(binary), &rng)
            default: body = Gzip.compress(randomBytes(200, &rng))  // valid gzip, garbage inside
            }
            cases.append(Case(label: "bad gzip \(index % 3)", path: "/v1/sync", body: Data(body), token: token,
                              headers: ["Content-Type": "application/x-fieldsync", "Content-Encoding": "gzip"], status: 400))
        }
        for encoding in ["br", "deflate", "compress"] {
            cases.append(Case(label: "content-encoding \(encoding)", path: "/v1/sync", body: Data(binary), token: token,
                              headers: ["Content-Type": "application/x-fieldsync", "Content-Encoding": encoding], status: 415))
        }

        // A valid body with a missing or wrong token must not land.
        var wrongTokens: [(String, [String: String])] = [
            ("no authorization", [:]),
            ("empty bearer", ["Authorization": "Bearer "]),
            ("bearer only", ["Authorization": "Bearer"]),
            ("basic auth", ["Authorization": "Basic d2VuZHk6Z2VoZWlt"]),
            ("token without scheme", ["Authorization": token]),
            ("admin token", ["Authorization": "Bearer \(adminToken)"]),
            ("enrollment code", ["Authorization": "Bearer \(usedCode)"]),
            ("token with extra text", ["Authorization": "Bearer \(token)x"]),
        ]
        for index in 0..<12 {
            var chars = Array(token)
            let at = Int.random(in: 4..<chars.count, using: &rng)
            chars[at] = chars[at] == "A" ? "B" : "A"
            wrongTokens.append(("token with one character changed #\(index)", ["Authorization": "Bearer \(String(chars))"]))
            wrongTokens.append(("random token #\(index)", ["Authorization": "Bearer fsd_\(randomBytes(16, &rng).map { String(format: "%02x", $0) }.joined())"]))
        }
        for (label, headers) in wrongTokens {
            for (isJSON, body) in [(false, binary), (true, json)] {
                var all = headers
                all["Content-Type"] = isJSON ? "application/json" : "application/x-fieldsync"
                cases.append(Case(label: "sync with \(label)", path: "/v1/sync", body: Data(body), token: nil, headers: all, status: 401))
            }
        }
        return cases
    }

    /// Malformed enrollments: nothing may enroll.
    static func enrollCases(usedCode: String, rng: inout SplitMix64) -> [Case] {
        var cases: [Case] = []
        func add(_ label: String, _ body: Data, status: Int? = nil, headers: [String: String] = [:]) {
            var all = ["Content-Type": "application/json"]
            for (key, value) in headers { all[key] = value }
            cases.append(Case(label: "enroll: \(label)", path: "/v1/enroll", body: body, headers: all, status: status))
        }
        func json(_ object: Any) -> Data { jsonData(object) ?? Data("{".utf8) }
        let valid = Array(MessageJSON.encode(EnrollRequest(code: usedCode, name: "indringer")))
        for _ in 0..<30 { add("random", Data(randomBytes(Int.random(in: 0...300, using: &rng), &rng))) }
        for _ in 0..<20 {
            let cut = truncated(valid, &rng)
            add("truncated", Data(cut))
        }
        for value in [5, 1.5, true, [Any](), ["code": "x"] as [String: Any], NSNull()] as [Any] {
            add("code of the wrong type", json(["code": value]))
            add("name of the wrong type", json(["code": "fse_onbekend", "name": value is NSNull ? 7 : value]))
        }
        for text in ["{}", "[]", "null", "\"fse_x\"", "42", "{\"name\":\"laptop\"}", "{\"code\":\"\"}", "{\"code\":\"   \"}",
                     "{\"code\":\"fse_x\",\"name\":\"\"}"] {
            add("JSON \(text)", Data(text.utf8))
        }
        add("code too long", json(["code": String(repeating: "c", count: 300)]))
        add("name too long", json(["code": usedCode, "name": String(repeating: "n", count: 150)]))
        for index in 0..<10 { add("replayed code #\(index)", Data(valid), status: 401) }
        for index in 0..<25 {
            var chars = Array(usedCode)
            let at = Int.random(in: 4..<chars.count, using: &rng)
            chars[at] = chars[at] == "x" ? "y" : "x"
            add("mutated code #\(index)", json(["code": String(chars)]), status: 401)
        }
        for index in 0..<20 {
            add("unknown code #\(index)", json(["code": "fse_\(randomBytes(20, &rng).map { String(format: "%02x", $0) }.joined())"]), status: 401)
        }
        add("oversized", Data(randomBytes(70 * 1024, &rng)), status: 413)
        add("bad gzip", Data(randomBytes(64, &rng)), status: 400, headers: ["Content-Encoding": "gzip"])
        add("gzip of garbage", Data(Gzip.compress(randomBytes(64, &rng))), status: 400, headers: ["Content-Encoding": "gzip"])
        return cases
    }

    /// Malformed admin requests: bad bodies, bad paths, unknown targets, missing or wrong tokens.
    static func adminCases(adminToken: String, deviceToken: String, household: HouseholdID, rng: inout SplitMix64) -> [Case] {
        var cases: [Case] = []
        let h = household.description
        // A valid body per endpoint: mutated, never sent as is with the admin token.
        let templates: [(String, [String: Any])] = [
            ("users", ["name": "nieuw", "role": "buurtcoach", "contact": "x@gemeente.example"]),
            ("assignments", ["user": "sam", "household": h, "until": 1_800_000_000_000]),
            ("assignments/remove", ["user": "sam", "household": h]),
            ("grants", ["user": "sam", "purpose": "WMO", "access": "read", "household": h, "until": 1_800_000_000_000]),
            ("grants/revoke", ["user": "sam", "purpose": "WMO", "household": h]),
            ("consent-blocks", ["household": h, "purpose": "WMO"]),
            ("consent-blocks/remove", ["household": h, "purpose": "WMO"]),
            ("conflicts/resolve", ["household": h, "field": "area", "value": "x", "breakGlass": "reden van minstens acht tekens"]),
            ("erase", ["household": h, "purpose": "WMO"]),
            ("households", ["label": "Fam. Nieuw"]),
            ("conflicts/query", ["household": h, "breakGlass": "reden van minstens acht tekens"]),
        ]
        func add(_ label: String, method: String = "POST", _ path: String, _ body: Data?, token: String? = adminToken, status: Int? = nil) {
            cases.append(Case(label: "admin \(path): \(label)", method: method, path: "/v1/admin/" + path, body: body, token: token,
                              headers: body == nil ? [:] : ["Content-Type": "application/json"], status: status))
        }
        for (path, template) in templates {
            let valid = Array(jsonData(template)!)
            for _ in 0..<4 { add("random", path, Data(randomBytes(Int.random(in: 1...200, using: &rng), &rng)), status: 400) }
            for _ in 0..<4 {
                var cut = truncated(valid, &rng)
                if cut.isEmpty { cut = Array("{".utf8) }
                add("truncated", path, Data(cut), status: 400)
            }
            for key in template.keys.sorted() {
                var object = template
                object[key] = wrongTyped(template[key]!, &rng)
                add("\(key) of the wrong type", path, jsonData(object), status: 400)
            }
            for _ in 0..<3 { add("wrong type somewhere", path, jsonData(mutateTree(template, depth: 0, &rng)), status: 400) }
            for text in ["[]", "\"x\"", "42", "true"] { add("JSON \(text)", path, Data(text.utf8), status: 400) }
            // The valid body without an admin token.
            add("no token", path, Data(valid), token: nil, status: 401)
            add("device token", path, Data(valid), token: deviceToken, status: 401)
            add("random token", path, Data(valid), token: "fsa_\(randomBytes(16, &rng).map { String(format: "%02x", $0) }.joined())", status: 401)
        }
        add("oversized", "users", Data(randomBytes((1 << 20) + 10, &rng)), status: 413)

        // Well-typed requests that name nothing that exists, or break a rule.
        let other = HouseholdID(UUID()).description
        let semantic: [(String, String, [String: Any], Int)] = [
            ("unknown user", "assignments", ["user": "niemand", "household": h], 404),
            ("unknown household", "assignments", ["user": "sam", "household": other], 404),
            ("not assigned", "assignments/remove", ["user": "sam", "household": other], 404),
            ("unknown purpose", "grants", ["user": "sam", "purpose": "ASTROLOGIE", "access": "read"], 400),
            ("server-only purpose", "grants", ["user": "sam", "purpose": "SERVER_ONLY", "access": "read"], 400),
            ("unknown access", "grants", ["user": "sam", "purpose": "WMO", "access": "alles"], 400),
            ("grant to nobody", "grants", ["user": "niemand", "purpose": "WMO", "access": "read"], 404),
            ("no such grant", "grants/revoke", ["user": "sam", "purpose": "JW"], 404),
            ("bad user name", "users", ["name": "geen geldige naam!", "role": "buurtcoach"], 400),
            ("unknown role", "users", ["name": "kees", "role": "koning"], 400),
            ("existing user", "users", ["name": "sam", "role": "buurtcoach"], 409),
            ("unknown field", "conflicts/resolve", ["household": h, "field": "schoenmaat", "pick": "2.1"], 400),
            ("pick and value", "conflicts/resolve", ["household": h, "field": "area", "pick": "2.1", "value": "x"], 400),
            ("nothing to resolve", "conflicts/resolve", ["household": other, "field": "area", "pick": "2.1"], 404),
            ("short break-glass", "conflicts/query", ["household": h, "breakGlass": "kort"], 400),
            ("erase unknown household", "erase", ["household": other], 404),
            ("erase a purpose without data", "erase", ["household": h, "purpose": "VEIL"], 404),
            ("household not a UUID", "assignments", ["user": "sam", "household": "huize-niemand"], 400),
        ]
        for (label, path, body, status) in semantic { add(label, path, jsonData(body), status: status) }
        add("until beyond Int64", "assignments", Data(#"{"user":"sam","household":"\#(h)","until":18446744073709551615}"#.utf8), status: 400)
        add("grant until beyond Int64", "grants",
            Data(#"{"user":"sam","purpose":"WMO","access":"read","until":9223372036854775808}"#.utf8), status: 400)
        for (label, path, status) in [("disable nobody", "users/niemand/disable", 404),
                                      ("code for nobody", "users/niemand/enrollment-code", 404),
                                      ("revoke no device", "devices/geen-apparaat/revoke", 404),
                                      ("requeue not a number", "rejects/abc/requeue", 400),
                                      ("requeue nothing", "rejects/987654/requeue", 404),
                                      ("discard nothing", "rejects/987654/discard", 404),
                                      ("discard not a number", "rejects/-x/discard", 400)] {
            add(label, path, nil, status: status)
        }
        for (label, path, status) in [("access of a non-UUID", "households/huize-niemand/access", 400),
                                      ("audit of a non-UUID", "audit?household=huize-niemand", 400),
                                      ("users without token", "users", 401)] {
            add(label, method: "GET", path, nil, token: status == 401 ? nil : adminToken, status: status)
        }
        for path in ["users", "devices", "households", "rejects", "audit", "audit/verify", "roles", "households/\(h)/access"] {
            add("GET with device token", method: "GET", path, nil, token: deviceToken, status: 401)
            add("GET with a wrong token", method: "GET", path, nil, token: adminToken + "x", status: 401)
        }
        return cases
    }

    /// Sends one case and describes what is wrong with the answer, if anything.
    static func check(_ item: Case, _ http: HTTPClient) async -> String? {
        do {
            let reply = try await http.send(item.method, item.path, body: item.body, token: item.token, headers: item.headers)
            if let status = item.status, reply.status != status {
                return "\(item.label): expected \(status), got \(reply)"
            }
            guard (400..<500).contains(reply.status) else { return "\(item.label): not a 4xx: \(reply)" }
            guard reply.isJSON, let error = reply.error, !error.code.isEmpty, !error.message.isEmpty else {
                return "\(item.label): no JSON error body: \(reply) \(reply.headers)"
            }
            return nil
        } catch {
            return "\(item.label): transport error \(error)"
        }
    }

    static func run(_ cases: [Case], _ http: HTTPClient, width: Int = 6) async -> [String] {
        var problems: [String] = []
        var index = 0
        while index < cases.count {
            let batch = cases[index..<min(cases.count, index + width)]
            index += width
            await withTaskGroup(of: String?.self) { group in
                for item in batch { group.addTask { await check(item, http) } }
                for await problem in group { if let problem { problems.append(problem) } }
            }
        }
        return problems
    }

    @Test("1,000+ random and mutated bodies to /v1/sync, /v1/enroll and admin endpoints: all 4xx JSON errors, the server stays healthy and the store is byte-identical")
    func thousandMalformedRequestsChangeNothing() async throws {
        try await withServer(maxBody: Self.maxBody) { server in
            var s = try await PlanScenario.make(server)
            // A used enrollment code, and two observers that pull a full snapshot before and after.
            let usedCode = try await server.enrollmentCode("sam")
            #expect(try await server.enroll(code: usedCode, name: "sam-tablet").status == 200)
            var observerBefore = try await server.device("sam", initialSync: false)
            var observerAfter = try await server.device("sam", initialSync: false)
            // Wendy's pending work: the base of every mutated sync body. It is never sent as is during the fuzzing.
            let wall = server.clock.now
            try s.wendy.replica.set(household: s.household, field: "next_contact", value: "2026-12-24", wall: wall)
            try s.wendy.replica.set(household: s.household, field: "wmo_indication", value: "Dagbesteding twee dagdelen", wall: wall)
            try s.wendy.replica.appendLog(household: s.household, purpose: .wmo, kind: "telefoon", occurredAt: nil,
                                          text: "Gebeld over de vervoersvoorziening", wall: wall)
            s.wendy.replica.recordRead(household: s.household, purpose: .wmo, action: "show", count: 2, wall: wall)
            let base = s.wendy.replica.makeRequest()
            #expect(base.ops.count == 3)

            let snapshotBefore = try await observerBefore.roundTrip(server.http, wall: wall).response.snapshots
            #expect(!snapshotBefore.isEmpty)
            let tablesBefore = try StoreFile.dump(server.databaseURL)

            var rng = SplitMix64(seed: 0x5EED_F1E1D)
            var skipped: [Case] = []
            let syncCases = Self.syncCases(base: base, token: s.wendy.token, adminToken: server.adminToken, usedCode: usedCode,
                                           rng: &rng, skippedWellFormed: &skipped)
            let enrollCases = Self.enrollCases(usedCode: usedCode, rng: &rng)
            let adminCases = Self.adminCases(adminToken: server.adminToken, deviceToken: s.wendy.token, household: s.household, rng: &rng)
            let all = syncCases + enrollCases + adminCases
            #expect(syncCases.count >= 800)
            #expect(all.count >= 1000, "at least 1,000 malformed requests (have \(all.count))")

            print("malformed input: \(all.count) requests (sync \(syncCases.count), enroll \(enrollCases.count), admin \(adminCases.count)); "
                  + "\(skipped.count) mutations decoded as well-formed requests and were sent separately")
            let problems = await Self.run(all, server.http)
            #expect(problems.isEmpty, "\(problems.count) of \(all.count) answers were wrong:\n\(problems.prefix(25).joined(separator: "\n"))")

            // Healthy, and nothing stored changed: every row of every table, byte for byte.
            let health = try await server.http.send("GET", "/health")
            #expect(health.status == 200)
            let tablesAfter = try StoreFile.dump(server.databaseURL)
            #expect(tablesAfter.keys.sorted() == tablesBefore.keys.sorted())
            for table in tablesBefore.keys.sorted() where tablesBefore[table] != tablesAfter[table] {
                Issue.record("table \(table) changed: \(tablesBefore[table]?.count ?? 0) rows before, \(tablesAfter[table]?.count ?? 0) after")
            }
            let snapshotAfter = try await observerAfter.roundTrip(server.http, wall: wall).response.snapshots
            #expect(snapshotAfter == snapshotBefore, "a fresh device pulls the same snapshot before and after")
            let metrics = try await server.http.send("GET", "/metrics").text
            #expect(!metrics.contains("status=\"500\""), "no request was answered 500")

            // The server still does real work: Wendy's pending ops land.
            let rounds = try await s.wendy.sync(server)
            #expect(s.wendy.replica.pending.isEmpty)
            #expect(rounds.first.map { round in base.ops.allSatisfy { round.response.acceptedContains($0) } } == true)

            // Mutations the codec reads as well-formed requests were not part of the count; they may be
            // accepted or rejected op by op, but they never crash the server or get a 500.
            var wellFormedProblems: [String] = []
            for item in skipped.prefix(150) {
                do {
                    let reply = try await server.http.send(item.method, item.path, body: item.body, token: item.token, headers: item.headers)
                    if reply.status >= 500 { wellFormedProblems.append("\(item.label): \(reply)") }
                    if reply.status >= 400, reply.error == nil { wellFormedProblems.append("\(item.label): no JSON error: \(reply)") }
                } catch {
                    wellFormedProblems.append("\(item.label): \(error)")
                }
            }
            #expect(wellFormedProblems.isEmpty, "\(wellFormedProblems.prefix(10).joined(separator: "\n"))")
            #expect(try await server.http.send("GET", "/health").status == 200)
            #expect(try await server.verifyAudit().ok)
        }
    }
}

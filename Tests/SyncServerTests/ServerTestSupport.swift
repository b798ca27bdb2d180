import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import Synchronization
import Testing
import SyncCore
import SyncServer

// Shared helpers for the SyncServer tests: a real server on a loopback port
// (port 0), a small URLSession HTTP client, an admin API wrapper and a test
// device driven by SyncCore's `ClientReplica`. No mocks: every request goes
// through a real socket to the real routes and the real SQLite store.

/// A fixed, fictional start time (2026-09-21) for the injectable clock.
let testEpochMilliseconds: UInt64 = 1_790_000_000_000
let hour: UInt64 = 3_600_000

/// The server's injectable wall clock, moved by tests (ms since 1970).
final class TestClock: Sendable {
    private let value: Mutex<UInt64>
    init(_ start: UInt64 = testEpochMilliseconds) { value = Mutex(start) }
    var now: UInt64 { value.withLock { $0 } }
    func advance(_ milliseconds: UInt64) { value.withLock { $0 += milliseconds } }
    /// A closure for `ServerConfiguration.clock`.
    var closure: @Sendable () -> UInt64 { { [self] in self.now } }
}

/// Collects every log line the server emits (message and metadata), so tests
/// can check that no personal data is logged.
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }

    func logger(label: String = "fieldsyncd-test") -> Logger {
        var logger = Logger(label: label) { _ in CapturingLogHandler(capture: self) }
        logger.logLevel = .trace
        return logger
    }
}

struct CapturingLogHandler: LogHandler {
    let capture: LogCapture
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        for (key, value) in event.metadata ?? [:] { all[key] = value }
        let rendered = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        capture.append("\(event.level) \(event.message) \(rendered) \(event.error.map { "\($0)" } ?? "")")
    }
}

/// A fresh private temporary directory for one test's data directory.
func makeTemporaryDirectory(_ label: String = "fieldsync") -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("\(label)-\(UUID().uuidString.lowercased().prefix(12))", isDirectory: true)
    try? FileManager.default.removeItem(at: url)
    return url
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

// MARK: HTTP

/// One HTTP answer: status, headers (lowercased names), body (inflated if it was gzip).
struct HTTPReply: Sendable, CustomStringConvertible {
    var status: Int
    var headers: [String: String]
    var body: Data
    /// The body as it came over the wire was gzip.
    var wasGzip: Bool

    func header(_ name: String) -> String? { headers[name.lowercased()] }
    var text: String { String(decoding: body, as: UTF8.self) }
    var isJSON: Bool { header("content-type")?.lowercased().hasPrefix("application/json") ?? false }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: body)
        } catch {
            throw TestFailure("HTTP \(status): could not decode \(T.self) from \(text.prefix(400)): \(error)")
        }
    }

    /// The `{"error": {"code", "message", ...}}` body, if this is one.
    var error: ErrorEnvelope.Inner? { try? JSONDecoder().decode(ErrorEnvelope.self, from: body).error }

    var description: String { "HTTP \(status) \(text.prefix(300))" }
}

struct ErrorEnvelope: Decodable {
    struct Inner: Decodable {
        var code: String
        var message: String
        var purge: String?
        var maxBody: String?
    }
    var error: Inner
}

/// A minimal HTTP client over URLSession (FoundationNetworking on Linux).
struct HTTPClient: Sendable {
    let baseURL: URL
    let session: URLSession

    init(baseURL: URL) {
        self.baseURL = baseURL
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 60
        configuration.httpMaximumConnectionsPerHost = 8
        configuration.urlCache = nil
        session = URLSession(configuration: configuration)
    }

    /// Sends one request. `headers` override the defaults; a `token` becomes `Authorization: Bearer`.
    func send(_ method: String, _ path: String, body: Data? = nil, token: String? = nil,
              headers: [String: String] = [:]) async throws -> HTTPReply {
        guard let url = URL(string: path, relativeTo: baseURL) else { throw TestFailure("bad path \(path)") }
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.timeoutInterval = 60
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        if let body { request.httpBody = body }
        let (data, response) = try await session.data(for: request)
        guard let http = response as? HTTPURLResponse else { throw TestFailure("not an HTTP response") }
        var fields: [String: String] = [:]
        for (key, value) in http.allHeaderFields {
            fields[String(describing: key).lowercased()] = String(describing: value)
        }
        var bytes = data
        var gzip = false
        if fields["content-encoding"]?.lowercased() == "gzip" {
            gzip = true
            // URLSession may or may not inflate by itself; inflate here if it did not.
            if bytes.count >= 2, bytes[bytes.startIndex] == 0x1F, bytes[bytes.startIndex + 1] == 0x8B {
                bytes = Data(try Gzip.decompress(Array(bytes), limit: 256 << 20))
            }
        }
        return HTTPReply(status: http.statusCode, headers: fields, body: bytes, wasGzip: gzip)
    }

    func json(_ method: String, _ path: String, _ value: some Encodable, token: String?) async throws -> HTTPReply {
        try await send(method, path, body: MessageJSON.encode(value), token: token, headers: ["Content-Type": "application/json"])
    }
}

// MARK: Server

/// A real FieldSync server on 127.0.0.1, port 0, with an injectable clock and captured logs.
final class TestServer: Sendable {
    let server: FieldSyncServer
    let directory: URL
    let clock: TestClock
    let logs: LogCapture
    let http: HTTPClient
    /// The admin token (from the first start, or read back from DATA/admin.token).
    let adminToken: String

    private init(server: FieldSyncServer, directory: URL, clock: TestClock, logs: LogCapture, adminToken: String) {
        self.server = server
        self.directory = directory
        self.clock = clock
        self.logs = logs
        self.adminToken = adminToken
        http = HTTPClient(baseURL: server.baseURL)
    }

    static func start(directory: URL? = nil, maxBody: Int = 8 << 20, clock: TestClock = TestClock(),
                      logs: LogCapture = LogCapture(), enrollmentCodeLifetime: TimeInterval = 72 * 3600) async throws -> TestServer {
        let directory = directory ?? makeTemporaryDirectory()
        let configuration = ServerConfiguration(dataDirectory: directory, host: "127.0.0.1", port: 0, maxBody: maxBody,
                                                enrollmentCodeLifetime: enrollmentCodeLifetime,
                                                logger: logs.logger(), clock: clock.closure)
        let server = try await FieldSyncServer.start(configuration)
        let token: String
        if let first = server.adminToken {
            token = first
        } else {
            token = try String(contentsOf: directory.appendingPathComponent("admin.token"), encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return TestServer(server: server, directory: directory, clock: clock, logs: logs, adminToken: token)
    }

    /// Stops the server (graceful: anchors the audit head, closes the store).
    func stop() async {
        await server.stop()
        http.session.finishTasksAndInvalidate()
    }

    /// A new server on the same data directory, clock and log capture.
    func restart(maxBody: Int = 8 << 20) async throws -> TestServer {
        await stop()
        return try await TestServer.start(directory: directory, maxBody: maxBody, clock: clock, logs: logs)
    }

    var databaseURL: URL { directory.appendingPathComponent("fieldsync.sqlite") }

    func removeDirectory() { try? FileManager.default.removeItem(at: directory) }

    // MARK: Admin API

    func admin(_ method: String, _ path: String, _ body: (some Encodable)? = Optional<String>.none) async throws -> HTTPReply {
        if let body { return try await http.json(method, "/v1/admin/" + path, body, token: adminToken) }
        return try await http.send(method, "/v1/admin/" + path, token: adminToken)
    }

    /// An admin call that must succeed, decoded.
    func adminOK<T: Decodable>(_ type: T.Type, _ method: String, _ path: String, _ body: (some Encodable)? = Optional<String>.none) async throws -> T {
        let reply = try await admin(method, path, body)
        guard (200..<300).contains(reply.status) else { throw TestFailure("\(method) \(path): \(reply)") }
        return try reply.decode(type)
    }

    @discardableResult
    func addUser(_ name: String, role: String, contact: String? = nil) async throws -> AdminAPI.UserInfo {
        try await adminOK(AdminAPI.UserInfo.self, "POST", "users", AdminAPI.AddUser(name: name, role: role, contact: contact))
    }

    func enrollmentCode(_ user: String) async throws -> String {
        try await adminOK(AdminAPI.EnrollmentCode.self, "POST", "users/\(user)/enrollment-code").code
    }

    func createHousehold(label: String?) async throws -> HouseholdID {
        try await adminOK(AdminAPI.HouseholdInfo.self, "POST", "households", AdminAPI.CreateHousehold(label: label)).id
    }

    func assign(_ user: String, _ household: HouseholdID, until: UInt64? = nil) async throws {
        _ = try await adminOK(AdminAPI.Done.self, "POST", "assignments", AdminAPI.Assign(user: user, household: household, until: until))
    }

    @discardableResult
    func grant(_ user: String, _ purpose: Purpose, _ access: Access, household: HouseholdID? = nil,
               until: UInt64? = nil) async throws -> AdminAPI.GrantResult {
        try await adminOK(AdminAPI.GrantResult.self, "POST", "grants",
                          AdminAPI.GrantRequest(user: user, purpose: purpose, access: access, household: household, until: until))
    }

    func devices() async throws -> [AdminAPI.DeviceInfo] {
        try await adminOK([AdminAPI.DeviceInfo].self, "GET", "devices")
    }

    func rejects() async throws -> [AdminAPI.RejectEntry] {
        try await adminOK([AdminAPI.RejectEntry].self, "GET", "rejects")
    }

    func audit(household: HouseholdID? = nil, limit: Int = 100_000) async throws -> [AuditRecord] {
        let query = household.map { "?household=\($0)&limit=\(limit)" } ?? "?limit=\(limit)"
        return try await adminOK([AuditRecord].self, "GET", "audit" + query)
    }

    func verifyAudit() async throws -> AuditVerification {
        try await adminOK(AuditVerification.self, "GET", "audit/verify")
    }

    func conflicts(household: HouseholdID? = nil, breakGlass: String? = nil) async throws -> [AdminAPI.ConflictEntry] {
        struct Query: Encodable { var household: HouseholdID?; var breakGlass: String? }
        return try await adminOK([AdminAPI.ConflictEntry].self, "POST", "conflicts/query", Query(household: household, breakGlass: breakGlass))
    }

    func erase(_ household: HouseholdID, purpose: Purpose? = nil) async throws -> AdminAPI.EraseResult {
        try await adminOK(AdminAPI.EraseResult.self, "POST", "erase", AdminAPI.Erase(household: household, purpose: purpose))
    }

    // MARK: Devices

    func enroll(code: String, name: String?) async throws -> HTTPReply {
        try await http.json("POST", "/v1/enroll", EnrollRequest(code: code, name: name), token: nil)
    }

    /// Creates the user if `role` is given, issues a code, enrolls and (by default) runs a first sync.
    func device(_ user: String, role: String? = nil, name: String? = nil, encoding: WireEncoding = .binary,
                initialSync: Bool = true) async throws -> TestDevice {
        if let role { try await addUser(user, role: role, contact: "\(user)@gemeente.example") }
        let code = try await enrollmentCode(user)
        let reply = try await enroll(code: code, name: name ?? "\(user)-laptop")
        guard reply.status == 200 else { throw TestFailure("enroll \(user): \(reply)") }
        var device = TestDevice(enrollment: try reply.decode(EnrollResponse.self), encoding: encoding)
        if initialSync { try await device.sync(self) }
        return device
    }
}

/// Runs `body` against a fresh server and always stops it and removes its data afterwards.
func withServer<T>(maxBody: Int = 8 << 20, clock: TestClock = TestClock(), logs: LogCapture = LogCapture(),
                   _ body: (TestServer) async throws -> T) async throws -> T {
    let server = try await TestServer.start(maxBody: maxBody, clock: clock, logs: logs)
    do {
        let result = try await body(server)
        await server.stop()
        server.removeDirectory()
        return result
    } catch {
        await server.stop()
        server.removeDirectory()
        throw error
    }
}

// MARK: Sync

enum WireEncoding: String, Sendable, CaseIterable, CustomStringConvertible {
    case binary
    case json
    var description: String { rawValue }
    var contentType: String { self == .binary ? "application/x-fieldsync" : "application/json" }

    func encode(_ request: SyncRequest) -> Data {
        self == .binary ? Data(request.binaryEncoded()) : MessageJSON.encode(request)
    }
}

/// One sync round trip as the test saw it.
struct SyncRound: Sendable {
    var reply: HTTPReply
    var response: SyncResponse
    var outcome: ClientReplica.SyncOutcome
}

/// Posts one sync request with a device token and decodes the response.
func postSync(_ http: HTTPClient, token: String?, request: SyncRequest, encoding: WireEncoding,
              gzipRequest: Bool = true, acceptGzip: Bool = true) async throws -> (HTTPReply, SyncResponse?) {
    var body = encoding.encode(request)
    var headers = ["Content-Type": encoding.contentType]
    if gzipRequest, body.count > Gzip.threshold {
        body = Data(Gzip.compress(Array(body)))
        headers["Content-Encoding"] = "gzip"
    }
    headers["Accept-Encoding"] = acceptGzip ? "gzip" : "identity"
    let reply = try await http.send("POST", "/v1/sync", body: body, token: token, headers: headers)
    guard reply.status == 200 else { return (reply, nil) }
    let response: SyncResponse
    if reply.isJSON {
        response = try MessageJSON.decode(SyncResponse.self, from: reply.body)
    } else {
        response = try SyncResponse(binary: Array(reply.body))
    }
    return (reply, response)
}

/// An enrolled device: its enrollment and its `ClientReplica` state machine.
struct TestDevice: Sendable {
    let enrollment: EnrollResponse
    var replica: ClientReplica
    var encoding: WireEncoding

    init(enrollment: EnrollResponse, encoding: WireEncoding) {
        self.enrollment = enrollment
        self.encoding = encoding
        replica = ClientReplica(replica: ReplicaID(enrollment.replica), user: enrollment.user, schema: Schema.defaultHouseholdPlan(),
                                policy: PolicyContext(user: enrollment.user, role: enrollment.role, rolePurposes: [:]))
    }

    var id: String { enrollment.deviceID }
    var token: String { enrollment.token }
    var replicaID: ReplicaID { ReplicaID(enrollment.replica) }
    var user: String { enrollment.user }

    /// One round trip with the replica's own request (or a hand-made one), applied to the replica.
    @discardableResult
    mutating func roundTrip(_ http: HTTPClient, wall: UInt64, request: SyncRequest? = nil) async throws -> SyncRound {
        let request = request ?? replica.makeRequest()
        let (reply, response) = try await postSync(http, token: token, request: request, encoding: encoding)
        guard let response else { throw TestFailure("sync for \(user) failed: \(reply)") }
        let outcome = replica.apply(response, wall: wall)
        return SyncRound(reply: reply, response: response, outcome: outcome)
    }

    /// Round trips until the server has nothing more and nothing is pending.
    @discardableResult
    mutating func sync(_ server: TestServer, rounds: Int = 12) async throws -> [SyncRound] {
        var result: [SyncRound] = []
        for _ in 0..<rounds {
            let round = try await roundTrip(server.http, wall: server.clock.now)
            result.append(round)
            if !round.outcome.needsAnotherRound && replica.pending.isEmpty { break }
            if !round.outcome.needsAnotherRound && round.outcome.accepted == 0 && round.outcome.rejected.isEmpty { break }
        }
        return result
    }

    /// Confirmed state of one segment on this device.
    func segment(_ household: HouseholdID, _ purpose: Purpose) -> SegmentState? {
        replica.confirmed[SegmentKey(household: household, purpose: purpose)]
    }

    /// The texts of a log in what the device shows.
    func logTexts(_ household: HouseholdID, _ purpose: Purpose, log: String = "contactlog") -> [String] {
        replica.view(SegmentKey(household: household, purpose: purpose))?.logs[log]?.ordered.map(\.body.text) ?? []
    }
}

extension SyncResponse {
    /// Every segment a response carries data for.
    var disclosedSegments: Set<SegmentKey> { Set(snapshots.map(\.segment)).union(deltas.map(\.segment)) }

    func acceptedContains(_ op: SyncOperation) -> Bool {
        accepted.contains { $0.segment == op.segment && $0.contains(op.dot) }
    }

    func rejection(of op: SyncOperation) -> RefusalReason? {
        rejected.first { $0.dot == op.dot && $0.segment == op.segment }?.reason
    }
}

extension Data {
    /// Whether `needle` occurs in these bytes.
    func containsBytes(_ needle: String) -> Bool { range(of: Data(needle.utf8)) != nil }
}

/// A hand-made op, for pushes a well-behaved client would never make.
func handMadeOp(replica: ReplicaID, counter: UInt64, household: HouseholdID, purpose: Purpose, author: String,
                payload: OperationPayload, epoch: UInt32 = 0, context: VersionVector = VersionVector(),
                wall: UInt64 = testEpochMilliseconds) -> SyncOperation {
    SyncOperation(dot: Dot(replica: replica, counter: counter), segment: SegmentKey(household: household, purpose: purpose),
                  epoch: epoch, stamp: HLCTimestamp(milliseconds: wall, logical: 0), author: author, context: context,
                  payload: payload)
}

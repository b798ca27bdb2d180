import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import NIOCore
import NIOHTTP1
import NIOPosix
import SyncCore
import SyncServer

/// A real `fieldsyncd` process on loopback with a fresh data directory, and
/// the HTTP calls the benchmarks make to it.
final class LiveServer: @unchecked Sendable {
    // Immutable after init; the process handle is only touched by stop().
    let port: Int
    let adminToken: String
    let dataDirectory: URL
    private let process: Process
    let session: URLSession
    /// The I/O thread of the devices' sync connections (see BenchConnection).
    let eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    init(maxConnections: Int = 256) throws {
        dataDirectory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("fieldbench-\(UUID().uuidString.prefix(8))")
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("fieldsyncd")
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            throw BenchError("fieldsyncd is not next to fieldbench (\(binary.path)); build it: swift build -c release --product fieldsyncd")
        }
        process = Process()
        process.executableURL = binary
        process.arguments = ["--data", dataDirectory.path, "--port", "0", "--log-level", "error"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        var token: String?
        var port: Int?
        var buffer = ""
        let deadline = Date().addingTimeInterval(30)
        while port == nil, Date() < deadline {
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { usleep(10_000); continue }
            buffer += String(decoding: chunk, as: UTF8.self)
            for line in buffer.split(separator: "\n") {
                if line.hasPrefix("fsa_") { token = String(line) }
                if let range = line.range(of: "http://127.0.0.1:") { port = Int(line[range.upperBound...]) }
            }
        }
        guard let port, let token else { process.terminate(); throw BenchError("fieldsyncd did not start") }
        self.port = port
        adminToken = token
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpMaximumConnectionsPerHost = maxConnections
        configuration.timeoutIntervalForRequest = 60
        session = URLSession(configuration: configuration)
    }

    func stop() {
        eventLoops.shutdownGracefully { _ in }
        process.interrupt()  // SIGINT: graceful shutdown
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: dataDirectory)
    }

    var base: String { "http://127.0.0.1:\(port)" }

    /// CPU seconds the server process has used so far.
    var cpuSeconds: Double { processCPUSeconds(process.processIdentifier) }

    struct Reply {
        var status: Int
        var body: [UInt8]
        /// Body bytes as they crossed the wire (gzipped when the transport gzipped them).
        var wireBytesUp = 0
        var wireBytesDown = 0
    }

    func post(_ path: String, token: String?, body: [UInt8], contentType: String = "application/json", gzip: Bool = true) async throws -> Reply {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = "POST"
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        request.setValue(contentType, forHTTPHeaderField: "Content-Type")
        if gzip, body.count > Gzip.threshold {
            request.setValue("gzip", forHTTPHeaderField: "Content-Encoding")
            request.httpBody = Data(Gzip.compress(body))
        } else {
            request.httpBody = Data(body)
        }
        let sent = request.httpBody?.count ?? 0
        request.setValue(gzip ? "gzip" : "identity", forHTTPHeaderField: "Accept-Encoding")
        let (data, response) = try await session.data(for: request)
        var bytes = Array(data)
        var received = bytes.count
        if bytes.count >= 2, bytes[0] == 0x1F, bytes[1] == 0x8B {
            bytes = try Gzip.decompress(bytes, limit: 1 << 30)
        } else if gzip, bytes.count > Gzip.threshold {
            received = Gzip.compress(bytes).count  // the client library already inflated it
        }
        return Reply(status: (response as? HTTPURLResponse)?.statusCode ?? 0, body: bytes, wireBytesUp: sent, wireBytesDown: received)
    }

    /// One sync request over a device's keep-alive connection, gzipped as the CLI sends it.
    func sync(_ body: [UInt8], token: String, over connection: BenchConnection) async throws -> Reply {
        var headers = [("Authorization", "Bearer \(token)"), ("Content-Type", "application/x-fieldsync"), ("Accept-Encoding", "gzip")]
        var sent = body
        if body.count > Gzip.threshold {
            headers.append(("Content-Encoding", "gzip"))
            sent = Gzip.compress(body)
        }
        let response = try await connection.send(method: .POST, path: "/v1/sync", headers: headers, body: sent)
        let bytes = response.gzipped ? try Gzip.decompress(response.body, limit: 1 << 30) : response.body
        return Reply(status: response.status, body: bytes, wireBytesUp: sent.count, wireBytesDown: response.body.count)
    }

    func connect() async throws -> BenchConnection {
        try await BenchConnection.connect(group: eventLoops, port: port)
    }

    func get(_ path: String, token: String) async throws -> Reply {
        var request = URLRequest(url: URL(string: base + path)!)
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        let (data, response) = try await session.data(for: request)
        return Reply(status: (response as? HTTPURLResponse)?.statusCode ?? 0, body: Array(data))
    }

    func admin<T: Decodable>(_ path: String, _ body: some Encodable) async throws -> T {
        let reply = try await post(path, token: adminToken, body: Array(try JSONEncoder().encode(body)))
        guard (200..<300).contains(reply.status) else {
            throw BenchError("admin \(path) failed: \(reply.status) \(String(decoding: reply.body, as: UTF8.self))")
        }
        return try JSONDecoder().decode(T.self, from: Data(reply.body))
    }

    /// A user with an enrolled device, as a ready client replica.
    func enrollDevice(user: String, role: String) async throws -> BenchDevice {
        let _: AdminAPI.UserInfo = try await admin("/v1/admin/users", AdminAPI.AddUser(name: user, role: role, contact: "06-00000000"))
        let code: AdminAPI.EnrollmentCode = try await admin("/v1/admin/users/\(user)/enrollment-code", [String: String]())
        let reply = try await post("/v1/enroll", token: nil, body: Array(try JSONEncoder().encode(EnrollRequest(code: code.code, name: "bench-\(user)"))))
        guard reply.status == 200 else { throw BenchError("enroll failed: \(reply.status)") }
        let enrolled = try JSONDecoder().decode(EnrollResponse.self, from: Data(reply.body))
        let replica = ClientReplica(replica: ReplicaID(enrolled.replica), user: enrolled.user, schema: .defaultHouseholdPlan(),
                                    policy: enrolled.policy)
        return BenchDevice(token: enrolled.token, replica: replica)
    }

    func assign(_ user: String, _ household: HouseholdID) async throws {
        let _: AdminAPI.Done = try await admin("/v1/admin/assignments", AdminAPI.Assign(user: user, household: household, until: nil))
    }

    func createHousehold() async throws -> HouseholdID {
        let info: AdminAPI.HouseholdInfo = try await admin("/v1/admin/households", AdminAPI.CreateHousehold(label: "Bench huishouden"))
        return info.id
    }
}

/// One benchmark device: its token and replica.
struct BenchDevice: Sendable {
    var token: String
    var replica: ClientReplica
    var households: [HouseholdID] = []
    /// Opened at the first sync; dropped after a failure so the next sync reconnects.
    var connection: BenchConnection?

    init(token: String, replica: ClientReplica) {
        self.token = token
        self.replica = replica
    }

    struct RoundStats {
        var bytesUp = 0
        var bytesDown = 0
        var compressedUp = 0
        var compressedDown = 0
        var accepted: [(SegmentKey, Dot)] = []
        var rounds = 0
        var failed = false
    }

    /// Syncs until the server has nothing more; returns what went over the wire.
    mutating func sync(_ server: LiveServer, now: UInt64) async throws -> RoundStats {
        var stats = RoundStats()
        for _ in 0..<10_000 {
            stats.rounds += 1
            let request = replica.makeRequest()
            let body = request.binaryEncoded()
            stats.bytesUp += body.count
            let pushed = request.ops
            if connection?.isActive != true { connection = try await server.connect() }
            let reply: LiveServer.Reply
            do {
                reply = try await server.sync(body, token: token, over: connection!)
            } catch {
                await connection?.close()
                connection = nil
                throw error
            }
            guard reply.status == 200 else {
                stats.failed = true
                return stats
            }
            stats.bytesDown += reply.body.count
            stats.compressedUp += reply.wireBytesUp
            stats.compressedDown += reply.wireBytesDown
            let response = try SyncResponse(binary: reply.body)
            for op in pushed where response.accepted.contains(where: { $0.segment == op.segment && $0.contains(op.dot) }) {
                stats.accepted.append((op.segment, op.dot))
            }
            let debug = stats.rounds > 20 && ProcessInfo.processInfo.environment["FIELDBENCH_DEBUG"] != nil
            // Read before `apply`, which takes the response (used after it, the response would be copied).
            let shape = debug ? "more=\(response.more) needHeld=\(response.needHeld) snapshots=\(response.snapshots.count) "
                + "deltas=\(response.deltas.count) purge=\(response.purge.count)" : ""
            let outcome = replica.apply(response, wall: now)
            if debug {
                FileHandle.standardError.write(Data("round \(stats.rounds): \(shape) resnapshots=\(outcome.resnapshots.count) accepted=\(outcome.accepted) pending=\(replica.pending.count)\n".utf8))
                if stats.rounds > 25 { exit(3) }
            }
            if !outcome.needsAnotherRound && (replica.pending.isEmpty || outcome.accepted + outcome.rejected.count == 0) { break }
        }
        return stats
    }
}

import Foundation
import GRDB
import Synchronization
import Testing
import SyncCore
import SyncServer
#if canImport(Glibc)
import Glibc
#endif

/// Point 6 (required by issue 4): the real `fieldsyncd` binary is killed with
/// SIGKILL while devices push concurrently, restarted on the same data
/// directory, and every op it acknowledged is there; the audit chain verifies.
@Suite("Crash recovery")
struct CrashRecoveryTests {
    /// `fieldsyncd` as a child process, its stdout and stderr in files.
    final class Daemon: @unchecked Sendable {
        let process = Process()
        let stdoutURL: URL
        let stderrURL: URL
        private(set) var port = 0

        init(logs: URL, name: String) {
            stdoutURL = logs.appendingPathComponent("\(name).stdout")
            stderrURL = logs.appendingPathComponent("\(name).stderr")
        }

        var baseURL: URL { URL(string: "http://127.0.0.1:\(port)")! }
        var stdout: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }
        var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }

        /// Starts `fieldsyncd --data DIR --port 0` and waits for its "listening" line.
        static func launch(_ binary: URL, data: URL, logs: URL, name: String) async throws -> Daemon {
            let daemon = Daemon(logs: logs, name: name)
            _ = FileManager.default.createFile(atPath: daemon.stdoutURL.path, contents: nil)
            _ = FileManager.default.createFile(atPath: daemon.stderrURL.path, contents: nil)
            daemon.process.executableURL = binary
            daemon.process.arguments = ["--data", data.path, "--port", "0", "--host", "127.0.0.1", "--log-level", "info"]
            daemon.process.standardOutput = try FileHandle(forWritingTo: daemon.stdoutURL)
            daemon.process.standardError = try FileHandle(forWritingTo: daemon.stderrURL)
            daemon.process.standardInput = FileHandle.nullDevice
            try daemon.process.run()
            let marker = "fieldsyncd listening on http://127.0.0.1:"
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline {
                if let line = daemon.stdout.split(separator: "\n").first(where: { $0.hasPrefix(marker) }),
                   let port = Int(line.dropFirst(marker.count).trimmingCharacters(in: .whitespaces)) {
                    daemon.port = port
                    return daemon
                }
                if !daemon.process.isRunning {
                    throw TestFailure("fieldsyncd exited with \(daemon.process.terminationStatus) before listening: \(daemon.stderr.suffix(2000))")
                }
                try await Task.sleep(for: .milliseconds(25))
            }
            daemon.process.terminate()
            throw TestFailure("fieldsyncd did not print its port within 60 s: \(daemon.stdout) \(daemon.stderr.suffix(2000))")
        }

        func signal(_ number: Int32) { kill(process.processIdentifier, number) }

        /// Waits (bounded) for the process to end.
        func waitForExit(seconds: Double = 30) async throws {
            let deadline = Date().addingTimeInterval(seconds)
            while process.isRunning {
                guard Date() < deadline else {
                    signal(SIGKILL)
                    throw TestFailure("fieldsyncd did not exit within \(seconds) s")
                }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    /// The `fieldsyncd` built next to this test binary (or in the package's build folder).
    static func fieldsyncdBinary() throws -> URL {
        var candidates: [URL] = []
        var folder = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(folder.appendingPathComponent("fieldsyncd"))
            folder = folder.deletingLastPathComponent()
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for build in [".build-helper", ".build"] {
            candidates.append(root.appendingPathComponent(build).appendingPathComponent("debug").appendingPathComponent("fieldsyncd"))
        }
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw TestFailure("fieldsyncd is not built; run 'swift build' first. Looked in: \(candidates.map(\.path))")
        }
        return found
    }

    final class Counter: Sendable {
        private let count = Mutex(0)
        func increment() { count.withLock { $0 += 1 } }
        var value: Int { count.withLock { $0 } }
    }

    /// A device pushing contact-log entries in a loop until the server goes away.
    struct Pusher: Sendable {
        var device: TestDevice
        let household: HouseholdID
        let name: String
        /// Every entry text this device created, and those the server acknowledged.
        var created: [String] = []
        var acknowledged: [String] = []
        var transportErrors = 0

        mutating func run(_ http: HTTPClient, acknowledgedSyncs: Counter, rounds: Int) async {
            for round in 0..<rounds {
                let wall = UInt64(Date().timeIntervalSince1970 * 1000)
                var texts: [Dot: String] = [:]
                for k in 0..<3 {
                    let text = "Bezoek bij mevrouw Crashtest \(name) ronde \(round) nummer \(k)"
                    guard let op = try? device.replica.appendLog(household: household, purpose: .regie, kind: "huisbezoek",
                                                                 occurredAt: nil, text: text, wall: wall) else { return }
                    texts[op.dot] = text
                    created.append(text)
                }
                _ = try? device.replica.set(household: household, field: "next_contact", value: "2026-12-\(10 + round % 18)", wall: wall)
                let request = device.replica.makeRequest()
                do {
                    let (reply, response) = try await postSync(http, token: device.token, request: request, encoding: device.encoding)
                    guard let response else {
                        Issue.record("\(name): sync answered \(reply)")
                        return
                    }
                    for op in request.ops where response.acceptedContains(op) {
                        if let text = texts[op.dot] ?? pendingText(op) { acknowledged.append(text) }
                    }
                    device.replica.apply(response, wall: wall)
                    acknowledgedSyncs.increment()
                } catch {
                    transportErrors += 1
                    return  // the server is gone
                }
            }
        }

        private func pendingText(_ op: SyncOperation) -> String? {
            if case .append(_, let body) = op.payload { return body.text }
            return nil
        }
    }

    @Test("SIGKILL while devices push, restart on the same data directory: every acknowledged op is there and the audit chain verifies")
    func killedMidPushLosesNothingAcknowledged() async throws {
        let binary = try Self.fieldsyncdBinary()
        let data = makeTemporaryDirectory("crash-data")
        let logs = makeTemporaryDirectory("crash-logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        defer {
            try? FileManager.default.removeItem(at: data)
            try? FileManager.default.removeItem(at: logs)
        }

        // First start: the admin token is printed once and written to DATA/admin.token.
        let first = try await Daemon.launch(binary, data: data, logs: logs, name: "first")
        let token = try String(contentsOf: data.appendingPathComponent("admin.token"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(first.stdout.split(separator: "\n").contains { $0 == token }, "the first start prints the admin token")
        let http = HTTPClient(baseURL: first.baseURL)

        func admin<T: Decodable>(_ type: T.Type, _ method: String, _ path: String, _ body: Data?, on client: HTTPClient) async throws -> T {
            let reply = try await client.send(method, "/v1/admin/" + path, body: body, token: token,
                                              headers: body == nil ? [:] : ["Content-Type": "application/json"])
            guard (200..<300).contains(reply.status) else { throw TestFailure("\(method) \(path): \(reply)") }
            return try reply.decode(type)
        }
        func enroll(_ user: String, on client: HTTPClient) async throws -> TestDevice {
            let code = try await admin(AdminAPI.EnrollmentCode.self, "POST", "users/\(user)/enrollment-code", nil, on: client).code
            let reply = try await client.json("POST", "/v1/enroll", EnrollRequest(code: code, name: "\(user)-laptop"), token: nil)
            guard reply.status == 200 else { throw TestFailure("enroll: \(reply)") }
            return TestDevice(enrollment: try reply.decode(EnrollResponse.self), encoding: .binary)
        }
        func syncFully(_ device: inout TestDevice, on client: HTTPClient) async throws -> [SyncRound] {
            var rounds: [SyncRound] = []
            for _ in 0..<12 {
                let round = try await device.roundTrip(client, wall: UInt64(Date().timeIntervalSince1970 * 1000))
                rounds.append(round)
                if !round.outcome.needsAnotherRound && device.replica.pending.isEmpty { break }
            }
            return rounds
        }

        var households: [HouseholdID] = []
        for index in 0..<2 {
            households.append(try await admin(AdminAPI.HouseholdInfo.self, "POST", "households",
                                              MessageJSON.encode(AdminAPI.CreateHousehold(label: "Fam. Crashproef \(index)")), on: http).id)
        }
        for user in ["coach-a", "coach-b", "controle"] {
            _ = try await admin(AdminAPI.UserInfo.self, "POST", "users", MessageJSON.encode(AdminAPI.AddUser(name: user, role: "buurtcoach", contact: nil)), on: http)
            for household in households {
                _ = try await admin(AdminAPI.Done.self, "POST", "assignments", MessageJSON.encode(AdminAPI.Assign(user: user, household: household, until: nil)), on: http)
            }
        }
        var pushers: [Pusher] = []
        for index in 0..<4 {
            var device = try await enroll(index % 2 == 0 ? "coach-a" : "coach-b", on: http)
            _ = try await syncFully(&device, on: http)
            #expect(device.replica.confirmed.count == 2, "the device holds both households' REGIE")
            pushers.append(Pusher(device: device, household: households[index % 2], name: "apparaat-\(index)"))
        }

        // Push concurrently; SIGKILL once 40 syncs have been acknowledged, while others are in flight.
        let acknowledgedSyncs = Counter()
        let finished = try await withThrowingTaskGroup(of: Pusher.self) { group -> [Pusher] in
            for pusher in pushers {
                group.addTask {
                    var pusher = pusher
                    await pusher.run(http, acknowledgedSyncs: acknowledgedSyncs, rounds: 400)
                    return pusher
                }
            }
            let deadline = Date().addingTimeInterval(60)
            while acknowledgedSyncs.value < 40, Date() < deadline { try await Task.sleep(for: .milliseconds(5)) }
            first.signal(SIGKILL)
            var result: [Pusher] = []
            for try await pusher in group { result.append(pusher) }
            return result
        }
        try await first.waitForExit()
        #expect(first.process.terminationReason == .uncaughtSignal)
        #expect(first.process.terminationStatus == SIGKILL)
        let acknowledged = finished.reduce(0) { $0 + $1.acknowledged.count }
        #expect(acknowledged >= 40 * 3, "entries were acknowledged before the kill")
        let inFlight = finished.reduce(0) { $0 + $1.created.count - $1.acknowledged.count }
        #expect(inFlight > 0, "some pushes were in flight when the server was killed")
        print("crash test: \(acknowledged) entries acknowledged before SIGKILL, \(inFlight) in flight")
        #expect(finished.allSatisfy { $0.transportErrors == 1 }, "every device saw the server go away mid-run")

        // Restart on the same directory: no new admin token is printed.
        let second = try await Daemon.launch(binary, data: data, logs: logs, name: "second")
        #expect(!second.stdout.contains(token), "a restart does not print the admin token again")
        #expect(!second.stdout.contains("First start"))
        let http2 = HTTPClient(baseURL: second.baseURL)
        #expect(try await http2.send("GET", "/health").status == 200)

        // A fresh device of an assigned user pulls snapshots holding every acknowledged entry.
        var checker = try await enroll("controle", on: http2)
        _ = try await syncFully(&checker, on: http2)
        for household in households {
            let present = Set(checker.logTexts(household, .regie))
            for pusher in finished where pusher.household == household {
                let missing = pusher.acknowledged.filter { !present.contains($0) }
                #expect(missing.isEmpty, "\(pusher.name): \(missing.count) acknowledged entries lost, e.g. \(missing.prefix(3))")
            }
        }
        let verification = try await admin(AuditVerification.self, "GET", "audit/verify", nil, on: http2)
        #expect(verification.ok, "audit chain after the crash: \(verification.problem ?? "")")
        #expect(verification.rows > 0)

        // The devices resume: what was in flight is re-pushed and lands exactly once, nothing is rejected.
        var resumed = finished
        for index in resumed.indices {
            let rounds = try await syncFully(&resumed[index].device, on: http2)
            #expect(rounds.flatMap(\.response.rejected).isEmpty, "\(resumed[index].name): \(rounds.flatMap(\.response.rejected))")
            #expect(resumed[index].device.replica.pending.isEmpty)
        }
        _ = try await syncFully(&checker, on: http2)
        for household in households {
            let texts = checker.logTexts(household, .regie)
            let created = finished.filter { $0.household == household }.flatMap(\.created)
            #expect(texts.count == created.count, "every entry made before the crash is there exactly once")
            #expect(Set(texts) == Set(created))
        }
        #expect(try await admin(AuditVerification.self, "GET", "audit/verify", nil, on: http2).ok)

        // SIGTERM: graceful shutdown, exit 0, the audit head anchored, the database intact.
        second.signal(SIGTERM)
        try await second.waitForExit()
        #expect(second.process.terminationReason == .exit)
        #expect(second.process.terminationStatus == 0, "stderr: \(second.stderr.suffix(1000))")
        let anchors = (try? String(contentsOf: data.appendingPathComponent("audit.anchors"), encoding: .utf8)) ?? ""
        #expect(!anchors.isEmpty, "the shutdown anchored the audit head")
        let integrity = try StoreFile.read(data.appendingPathComponent("fieldsync.sqlite")) { db in
            try String.fetchOne(db, sql: "PRAGMA integrity_check")
        }
        #expect(integrity == "ok")

        // The daemon's logs carry no case content.
        for daemon in [first, second] {
            #expect(!daemon.stderr.contains("Crashtest") && !daemon.stdout.contains("Crashtest"), "case text in fieldsyncd output")
            #expect(!daemon.stderr.contains("Crashproef"))
        }
    }
}

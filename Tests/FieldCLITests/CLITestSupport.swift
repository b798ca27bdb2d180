import FieldCLI
import Foundation
import Logging
import SyncCore
import SyncServer
import Testing

/// A real server on a loopback port and CLI homes in a temporary directory;
/// commands run through the same entry point as the `fieldcli` binary.
final class CLIWorld: @unchecked Sendable {
    // Test-only: each world is used by one test at a time.
    let root: URL
    var server: FieldSyncServer
    let adminToken: String
    var port: Int

    /// The policy the server (re)starts with; a test may change it before `restartServer`.
    var policy: PolicyFile?
    let maxBody: Int

    init(policy: PolicyFile? = nil, maxBody: Int = 8 << 20) async throws {
        root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("fieldcli-test-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        self.policy = policy
        self.maxBody = maxBody
        server = try await FieldSyncServer.start(Self.configuration(root: root, port: 0, policy: policy, maxBody: maxBody))
        adminToken = server.adminToken!
        port = server.port
    }

    static func configuration(root: URL, port: Int, policy: PolicyFile? = nil, maxBody: Int = 8 << 20) -> ServerConfiguration {
        var logger = Logger(label: "test-server")
        logger.logLevel = .critical
        return ServerConfiguration(dataDirectory: root.appendingPathComponent("server"), port: port, maxBody: maxBody, policy: policy,
                                   logger: logger)
    }

    var url: String { "http://127.0.0.1:\(port)" }

    func stopServer() async { await server.stop() }

    func restartServer() async throws {
        server = try await FieldSyncServer.start(Self.configuration(root: root, port: port, policy: policy, maxBody: maxBody))
    }

    func home(_ name: String) -> URL { root.appendingPathComponent("home-\(name)") }

    struct Result {
        var code: Int32
        var out: String
        var err: String
    }

    /// `fieldcli --home HOME args…`
    @discardableResult
    func cli(_ home: String?, _ arguments: [String], environment: [String: String] = [:]) async -> Result {
        let sink = OutputSink.capturing()
        let args = (home.map { ["--home", self.home($0).path] } ?? []) + arguments
        let code = await FieldCLIEntry.run(args, environment: environment, output: sink)
        return Result(code: code, out: sink.stdout, err: sink.stderr)
    }

    @discardableResult
    func admin(_ arguments: [String]) async -> Result {
        await cli(nil, ["admin", "--server", url, "--token", adminToken] + arguments)
    }

    /// A fresh one-time enrollment code for an existing user.
    func enrollmentCode(_ user: String) async throws -> String {
        try json(AdminAPI.EnrollmentCode.self, await admin(["--json", "enroll-code", user])).code
    }

    /// Adds a user and enrolls a device for them in home `name`; returns the enroll output.
    @discardableResult
    func enroll(_ name: String, role: String, environment: [String: String] = [:]) async throws -> Result {
        let added = await admin(["user", "add", name, "--role", role, "--contact", "06-0000\(name.count)"])
        try #require(added.code == 0, "user add: \(added.err)")
        let code = try await enrollmentCode(name)
        let enrolled = await cli(name, ["--json", "enroll", "--server", url, "--code", code, "--name", "laptop-\(name)"],
                                 environment: environment)
        try #require(enrolled.code == 0, "enroll: \(enrolled.err)")
        return enrolled
    }

    /// Creates a household on `name`'s device and syncs it.
    func household(on name: String, label: String) async throws -> String {
        let created = await cli(name, ["household", "new", "--label", label])
        try #require(created.code == 0, "household new: \(created.err)")
        let sync = await cli(name, ["sync"])
        try #require(sync.code == 0, "sync: \(sync.err)")
        return created.out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func json<T: Decodable>(_ type: T.Type, _ result: Result) throws -> T {
        try JSONDecoder().decode(type, from: Data(result.out.utf8))
    }

    /// True when any file in the home directory contains the text.
    func homeContains(_ name: String, _ text: String) -> Bool {
        let needle = Data(text.utf8)
        let files = (try? FileManager.default.contentsOfDirectory(at: home(name), includingPropertiesForKeys: nil)) ?? []
        return files.contains { (try? Data(contentsOf: $0))?.range(of: needle) != nil }
    }

    func finish() async {
        await server.stop()
        try? FileManager.default.removeItem(at: root)
    }
}

/// `show --json` as the tests read it.
struct ShownHousehold: Decodable {
    struct Value: Decodable {
        var id: String
        var value: String
        var author: String
        var winner: Bool
    }
    struct Field: Decodable {
        var name: String
        var value: String?
        var conflict: Bool
        var values: [Value]
    }
    struct Entry: Decodable { var text: String }
    struct Segment: Decodable {
        var purpose: String
        var fields: [Field]
        var logs: [Entry]
    }
    struct Involved: Decodable {
        var user: String
        var role: String
    }
    var segments: [Segment]
    var involved: [Involved]

    func field(_ name: String) -> Field? { segments.flatMap(\.fields).first { $0.name == name } }
}

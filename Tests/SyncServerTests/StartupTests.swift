import Foundation
import GRDB
import Logging
import Testing
import SyncCore
import SyncServer

/// Point 1: the first start creates the first admin and its token file; a
/// restart on the same data directory does not.
@Suite("Startup")
struct StartupTests {
    @Test("first start creates an admin token in DATA/admin.token (0600) in a 0700 data dir; a restart keeps it")
    func adminTokenCreatedOnceAndKept() async throws {
        let directory = makeTemporaryDirectory("startup")
        defer { try? FileManager.default.removeItem(at: directory) }
        let first = try await TestServer.start(directory: directory)
        let token = try #require(first.server.adminToken, "the first start must return the admin token")
        #expect(token.hasPrefix("fsa_"))
        #expect(token.count >= 4 + 43, "a 256-bit token in base64 is 43 characters")

        let tokenFile = directory.appendingPathComponent("admin.token")
        let onDisk = try String(contentsOf: tokenFile, encoding: .utf8)
        #expect(onDisk.trimmingCharacters(in: .whitespacesAndNewlines) == token)
        #expect(FileSecurity.mode(of: tokenFile).map { $0 & 0o777 } == 0o600)
        #expect(FileSecurity.mode(of: directory).map { $0 & 0o777 } == 0o700)
        #expect(FileSecurity.mode(of: directory.appendingPathComponent("audit.key")).map { $0 & 0o777 } == 0o600)
        #expect(FileSecurity.mode(of: first.databaseURL).map { $0 & 0o777 } == 0o600)

        let users = try await first.adminOK([AdminAPI.UserInfo].self, "GET", "users")
        #expect(users.map(\.name) == ["admin"])
        #expect(users.first?.role == "admin")

        let second = try await first.restart()
        #expect(second.server.adminToken == nil, "a restart must not create another admin token")
        #expect(try String(contentsOf: tokenFile, encoding: .utf8) == onDisk, "the token file is not rewritten")
        let again = try await second.http.send("GET", "/v1/admin/users", token: token)
        #expect(again.status == 200, "the first token still works after a restart: \(again)")
        #expect(try again.decode([AdminAPI.UserInfo].self).map(\.name) == ["admin"], "no second admin was created")

        let wrong = try await second.http.send("GET", "/v1/admin/users", token: "fsa_" + String(repeating: "A", count: 43))
        #expect(wrong.status == 401)
        #expect(wrong.error?.code == "unauthorized")
        await second.stop()
    }

    @Test("a store from before the changed-elements index is upgraded at start, and pulls still send what changed")
    func anOlderStoreIsMigratedAtStart() async throws {
        let first = try await TestServer.start(directory: makeTemporaryDirectory("startup-migrate"))
        defer { first.removeDirectory() }
        var s = try await PlanScenario.make(first)
        let later = "Telefoon: bewoner vraagt om een nieuw keukentafelgesprek"
        try s.wendy.replica.appendLog(household: s.household, purpose: .regie, kind: "telefoon", occurredAt: nil, text: later,
                                      wall: first.clock.now)
        try await s.wendy.sync(first)
        await first.stop()

        // Turn the store back into the first schema version: no index, migration not recorded.
        let queue = try DatabaseQueue(path: first.databaseURL.path)
        try await queue.write { db in
            try db.execute(sql: "DROP INDEX elements_changed")
            try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v2-elements-by-seq'")
        }
        try queue.close()

        let second = try await TestServer.start(directory: first.directory, clock: first.clock, logs: first.logs)
        let indexed = try await DatabaseQueue(path: second.databaseURL.path).read { db in
            try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'elements_changed')")
        }
        #expect(indexed == true, "the start recreates the index")
        try await s.sam.sync(second)
        #expect(s.sam.logTexts(s.household, .regie).contains(later), "the delta since Sam's cursor carries Wendy's new entry")
        await second.stop()
    }

    @Test("a port in use fails the start with a clear error instead of hanging, and the first server keeps serving")
    func aPortInUseFailsTheStartClearly() async throws {
        let first = try await TestServer.start()
        defer { try? FileManager.default.removeItem(at: first.directory) }
        let directory = makeTemporaryDirectory("startup-port-in-use")
        defer { try? FileManager.default.removeItem(at: directory) }
        let configuration = ServerConfiguration(dataDirectory: directory, host: "127.0.0.1", port: first.server.port)
        // Bounded: before the fix the start never returned when the listener could not bind.
        let outcome = try await withThrowingTaskGroup(of: String?.self) { group in
            group.addTask {
                do {
                    let second = try await FieldSyncServer.start(configuration)
                    await second.stop()
                    return nil
                } catch let error as ServerError {
                    return error.message
                }
            }
            group.addTask {
                try await Task.sleep(for: .seconds(20))
                return "timed out"
            }
            let first = try await group.next()!
            group.cancelAll()
            return first
        }
        let message = try #require(outcome, "a second server on the same port must not start")
        #expect(message.contains("\(first.server.port)") && message.contains("--port"), "\(message)")
        let health = try await first.http.send("GET", "/health")
        #expect(health.status == 200)
        await first.stop()
    }

    @Test("fieldsyncd names the problem when its data directory or schema file cannot be used", arguments: [
        (["--data", "/proc/fieldsync-test"], "cannot use the data directory /proc/fieldsync-test"),
        (["--data", "DATA", "--schema", "/nonexistent/schema.json"], "Cannot read /nonexistent/schema.json (given to --schema): no such file"),
        (["--data", "DATA", "--policy", "/tmp"], "/tmp (given to --policy) is a directory; give the JSON file itself"),
        (["--data", "FILE/data"], "FILE is a file, so the data directory FILE/data cannot be created under it"),
        (["--data", "DATA", "--host", "999.1.1.1"], "Is 999.1.1.1 an address of this machine?"),
    ])
    func unusableFilesAreNamed(arguments: [String], expected: String) throws {
        let directory = makeTemporaryDirectory("startup-files")
        defer { try? FileManager.default.removeItem(at: directory) }
        let process = Process()
        process.executableURL = try CrashRecoveryTests.fieldsyncdBinary()
        let file = directory.deletingLastPathComponent().appendingPathComponent(directory.lastPathComponent + "-a-file")
        try Data("not a directory".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        process.arguments = arguments.map { $0 == "DATA" ? directory.path : $0.replacingOccurrences(of: "FILE", with: file.path) } + ["--port", "0"]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let output = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 1)
        #expect(output.contains(expected.replacingOccurrences(of: "FILE", with: file.path)), "\(output)")
        #expect(!output.contains("NSCocoaErrorDomain") && !output.contains("UserInfo"), "\(output)")
    }

    @Test("an existing data directory with loose permissions is tightened to 0700")
    func existingDirectoryIsTightened() async throws {
        let directory = makeTemporaryDirectory("startup-loose")
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        let server = try await TestServer.start(directory: directory)
        #expect(FileSecurity.mode(of: directory).map { $0 & 0o777 } == 0o700)
        #expect(server.server.adminToken != nil)
        await server.stop()
    }

    /// Starts a server that must be refused and returns the refusal's text;
    /// a start that succeeds is recorded as an issue (`what` says what it accepted).
    static func refusedStart(_ what: String, _ start: () async throws -> Void) async -> String {
        do {
            try await start()
            Issue.record("\(what)")
            return ""
        } catch {
            return "\(error)"
        }
    }

    /// The default schema with one field changed (or removed), as a deployment's --schema file would be.
    static func schema(changing name: String, _ change: (inout Schema.Field) -> Void = { _ in }, removing: Bool = false,
                       adding: [Schema.Field] = []) throws -> Schema {
        let base = Schema.defaultHouseholdPlan()
        var fields = base.fields
        if removing { fields.removeAll { $0.name == name } } else if let index = fields.firstIndex(where: { $0.name == name }) { change(&fields[index]) }
        return try Schema(name: base.name, version: base.version + 1, purposes: base.purposes, fields: fields + adding,
                          logs: base.logs, collections: base.collections)
    }

    static func start(_ directory: URL, schema: Schema) async throws -> FieldSyncServer {
        var logger = Logger(label: "test-server")
        logger.logLevel = .critical
        return try await FieldSyncServer.start(ServerConfiguration(dataDirectory: directory, port: 0, schema: schema, logger: logger))
    }

    @Test("a --schema that moves a stored field to another purpose, changes its type or drops it is refused at start; retiring it and adding fields is fine")
    func aFieldKeepsItsPurposeAndType() async throws {
        let directory = makeTemporaryDirectory("startup-schema")
        defer { try? FileManager.default.removeItem(at: directory) }
        await (try await Self.start(directory, schema: .defaultHouseholdPlan())).stop()

        let refusals: [(Schema, String)] = [
            (try Self.schema(changing: "address") { $0.purpose = Purpose("WMO") }, "moves field \"address\" from purpose REGIE to WMO"),
            (try Self.schema(changing: "address") { $0.type = .number }, "changes the type of field \"address\" from text to number"),
            (try Self.schema(changing: "address", removing: true), "drops field \"address\""),
        ]
        for (schema, expected) in refusals {
            let refusal = await Self.refusedStart("a schema that \(expected) was accepted") {
                await (try await Self.start(directory, schema: schema)).stop()
            }
            #expect(refusal.contains(expected), "\(refusal)")
        }
        let evolved = try Self.schema(changing: "address", { $0.retired = true },
                                      adding: [Schema.Field(name: "address_v2", purpose: .regie, type: .text)])
        await (try await Self.start(directory, schema: evolved)).stop()
        // The added field is bound now too.
        let dropped = await Self.refusedStart("dropping the added field was accepted") {
            await (try await Self.start(directory, schema: try Self.schema(changing: "address", { $0.retired = true }))).stop()
        }
        #expect(dropped.contains("drops field \"address_v2\""), "\(dropped)")
    }

    @Test("audit.key: a missing or foreign key for a log with rows stops the start with what to restore; loosened secret files are made 0600 again")
    func theAuditKeyBelongsToItsLog() async throws {
        let directory = makeTemporaryDirectory("startup-auditkey")
        defer { try? FileManager.default.removeItem(at: directory) }
        await (try await TestServer.start(directory: directory)).stop()
        let keyURL = directory.appendingPathComponent("audit.key")
        let tokenURL = directory.appendingPathComponent("admin.token")
        let original = try Data(contentsOf: keyURL)

        try FileManager.default.removeItem(at: keyURL)
        let missing = await Self.refusedStart("a missing audit.key was replaced") {
            await (try await TestServer.start(directory: directory)).stop()
        }
        #expect(missing.contains("audit.key is missing") && missing.contains("Restore audit.key"), "\(missing)")
        #expect(!FileManager.default.fileExists(atPath: keyURL.path), "no new key was written for the old log")

        try Data((0..<32).map { _ in UInt8.random(in: 0...255) }).write(to: keyURL)
        let foreign = await Self.refusedStart("a foreign audit.key was accepted") {
            await (try await TestServer.start(directory: directory)).stop()
        }
        #expect(foreign.contains("does not belong to this database"), "\(foreign)")

        // A store from before fingerprints: a key is adopted only if it verifies the log.
        let database = directory.appendingPathComponent("fieldsync.sqlite")
        func dropFingerprint() throws {
            let queue = try DatabaseQueue(path: database.path)
            try queue.write { try $0.execute(sql: "DELETE FROM store_meta WHERE key = 'audit.key.fingerprint'") }
            try queue.close()
        }
        func fingerprintRecorded() throws -> Bool {
            let queue = try DatabaseQueue(path: database.path)
            defer { try? queue.close() }
            return try queue.read { try Bool.fetchOne($0, sql: "SELECT EXISTS (SELECT 1 FROM store_meta WHERE key = 'audit.key.fingerprint')") ?? false }
        }
        try dropFingerprint()
        let logs = LogCapture()
        let adopting = try await TestServer.start(directory: directory, logs: logs)  // the foreign key is still in place
        await adopting.stop()
        #expect(logs.all.contains { $0.hasPrefix("critical") && $0.contains("does not verify the newest audit row") })
        #expect(try fingerprintRecorded() == false, "a key that does not verify the log is not adopted")

        try original.write(to: keyURL)
        let others = ["audit.anchors", "fieldsyncd.lock"].map { directory.appendingPathComponent($0) }
        for url in [keyURL, tokenURL] + others { chmod(url.path, 0o644) }
        let server = try await TestServer.start(directory: directory)
        for url in [keyURL, tokenURL] + others {
            #expect(FileSecurity.mode(of: url).map { $0 & 0o777 } == 0o600, "\(url.lastPathComponent)")
        }
        let verified = try await server.adminOK(AuditVerification.self, "GET", "audit/verify")
        #expect(verified.ok, "\(verified.problem ?? "")")
        await server.stop()
        #expect(try fingerprintRecorded(), "the right key, which verifies the log, is adopted")
    }

    @Test("a database overwritten with garbage, or emptied beside an anchored audit log, stops the start with what to restore")
    func aDamagedOrSwappedDatabaseIsNamed() async throws {
        let directory = makeTemporaryDirectory("startup-damaged")
        defer { try? FileManager.default.removeItem(at: directory) }
        await (try await TestServer.start(directory: directory)).stop()  // a graceful stop anchors the audit head
        let database = directory.appendingPathComponent("fieldsync.sqlite")
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: database.path + suffix) }

        try Data(repeating: 0xA5, count: 16_384).write(to: database)
        let garbage = await Self.refusedStart("a garbage database was opened") {
            await (try await TestServer.start(directory: directory)).stop()
        }
        #expect(garbage.contains("is damaged or not a FieldSync database") && garbage.contains("from backup"), "\(garbage)")
        #expect(!garbage.contains("SQLite error"), "\(garbage)")

        try Data().write(to: database)
        let emptied = await Self.refusedStart("an emptied database was taken for a first start") {
            await (try await TestServer.start(directory: directory)).stop()
        }
        #expect(emptied.contains("audit.anchors records an audit log") && emptied.contains("emptied or replaced"), "\(emptied)")
    }

    @Test("a second server on the same data directory is refused while the first runs, and starts once it stopped")
    func oneServerPerDataDirectory() async throws {
        let first = try await TestServer.start()
        defer { first.removeDirectory() }
        let second = await Self.refusedStart("two servers ran on one data directory") {
            await (try await TestServer.start(directory: first.directory)).stop()
        }
        #expect(second.contains("Another fieldsyncd (process \(getpid()))") && second.contains("--data"), "\(second)")
        #expect(try await first.http.send("GET", "/health").status == 200)
        let next = try await first.restart()
        #expect(try await next.http.send("GET", "/health").status == 200)
        await next.stop()
    }
}

import ArgumentParser
import Foundation
import Logging
import SyncCore
import SyncServer

/// `fieldsyncd`: flags and environment → configuration → run (DESIGN §8).
@main
struct FieldSyncDaemon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fieldsyncd",
        abstract: "The FieldSync sync server for household plans and contact logs.",
        discussion: """
            On first start it creates the first admin, prints the admin token once and writes it to DATA/admin.token (mode 0600).
            Environment: FIELDSYNC_DATA, FIELDSYNC_HOST, FIELDSYNC_PORT, FIELDSYNC_MAX_BODY, FIELDSYNC_LOG_LEVEL.
            SIGTERM or SIGINT: finishes in-flight requests, anchors the audit chain, closes the store and exits 0.
            """)

    @Option(name: .long, help: "Data directory (database, audit key, admin token). Env: FIELDSYNC_DATA.")
    var data: String?

    @Option(name: .long, help: "Address to listen on. Env: FIELDSYNC_HOST. Default 127.0.0.1.")
    var host: String?

    @Option(name: .long, help: "Port to listen on; 0 picks a free one and prints it. Env: FIELDSYNC_PORT. Default 8080.")
    var port: Int?

    @Option(name: .customLong("max-body"), help: "Largest request body in bytes. Env: FIELDSYNC_MAX_BODY. Default 8388608.")
    var maxBody: Int?

    @Option(name: .long, help: "A schema JSON file instead of the built-in household-plan schema.")
    var schema: String?

    @Option(name: .long, help: "A policy JSON file (roles → purposes) instead of the built-in policy.")
    var policy: String?

    @Flag(name: .customLong("require-device-passphrase"),
          help: "Devices must protect their key with a passphrase before they sync (same as requireDevicePassphrase in the policy file).")
    var requireDevicePassphrase = false

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error. Env: FIELDSYNC_LOG_LEVEL.")
    var logLevel: String?

    func validate() throws {
        if let port, !(0...65535).contains(port) { throw ValidationError("--port must be between 0 and 65535.") }
        if let maxBody, maxBody < 4096 { throw ValidationError("--max-body must be at least 4096 bytes.") }
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let dataPath = data ?? environment["FIELDSYNC_DATA"], !dataPath.isEmpty else {
            throw ValidationError("Give a data directory: --data DIR or FIELDSYNC_DATA.")
        }
        let level = Logger.Level(rawValue: logLevel ?? environment["FIELDSYNC_LOG_LEVEL"] ?? "info") ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var schemaValue = Schema.defaultHouseholdPlan()
        if let schema {
            schemaValue = try Schema.load(json: try Self.read(schema, option: "--schema"))
        }
        var policyValue: PolicyFile?
        if let policy {
            policyValue = try PolicyFile.load(json: try Self.read(policy, option: "--policy"), schema: schemaValue)
        }
        if requireDevicePassphrase {
            var adjusted = policyValue ?? .defaultPolicy(schema: schemaValue)
            adjusted.requireDevicePassphrase = true
            policyValue = adjusted
        }
        // A file where a parent directory should be: say so, not "error 512".
        var ancestor = URL(fileURLWithPath: dataPath).standardizedFileURL
        while ancestor.path != "/" {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: ancestor.path, isDirectory: &isDirectory) {
                guard isDirectory.boolValue else {
                    throw StartupError("\(ancestor.path) is a file, so the data directory \(dataPath) cannot be \(ancestor.path == URL(fileURLWithPath: dataPath).standardizedFileURL.path ? "used" : "created under it"). Give a directory with --data or FIELDSYNC_DATA.")
                }
                break
            }
            ancestor.deleteLastPathComponent()
        }
        let envPort = environment["FIELDSYNC_PORT"].flatMap(Int.init)
        let envBody = environment["FIELDSYNC_MAX_BODY"].flatMap(Int.init)
        let config = ServerConfiguration(
            dataDirectory: URL(fileURLWithPath: dataPath),
            host: host ?? environment["FIELDSYNC_HOST"] ?? "127.0.0.1",
            port: port ?? envPort ?? 8080,
            maxBody: maxBody ?? envBody ?? 8 << 20,
            schema: schemaValue,
            policy: policyValue,
            logger: Logger(label: "fieldsyncd"))
        let server: FieldSyncServer
        do {
            server = try await FieldSyncServer.start(config, handleSignals: true)
        } catch let error as ServerError {
            throw StartupError(error.message)
        } catch let error as CocoaError {
            // Creating, tightening or reading the data directory's files.
            throw StartupError("fieldsyncd cannot use the data directory \(dataPath): \(Self.reason(error)). "
                               + "Give a directory it can create and write, with --data or FIELDSYNC_DATA.")
        }
        if let token = server.adminToken {
            emit("First start: created admin user 'admin'. Admin token (shown once, also in \(dataPath)/admin.token):")
            emit(token)
        }
        emit("fieldsyncd listening on http://\(config.host):\(server.port)")
        try await server.wait()
        // After SIGTERM/SIGINT: in-flight syncs finished, the audit head anchored, the store closed.
        Logger(label: "fieldsyncd").info("fieldsyncd stopped: requests finished, audit head anchored, store closed")
    }
}

extension FieldSyncDaemon {
    /// A file named on the command line, or an error that names the option.
    static func read(_ path: String, option: String) throws -> Data {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw StartupError("\(path) (given to \(option)) is a directory; give the JSON file itself.")
        }
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch let error as CocoaError {
            throw StartupError("Cannot read \(path) (given to \(option)): \(reason(error)). Check the path.")
        }
    }

    /// The reason of a file error, without the error domain and user-info dump.
    static func reason(_ error: CocoaError) -> String {
        switch error.code {
        case .fileNoSuchFile, .fileReadNoSuchFile: return "no such file or directory"
        case .fileReadNoPermission, .fileWriteNoPermission: return "permission denied"
        case .fileWriteVolumeReadOnly: return "the file system is read-only"
        case .fileWriteOutOfSpace: return "no space left on the device"
        default:
            let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError
            if let underlying, underlying.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(underlying.code))) }
            return error.localizedDescription.trimmingCharacters(in: CharacterSet(charactersIn: ". "))
        }
    }
}

/// A startup failure, printed as its message alone.
struct StartupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Writes a line to stdout unbuffered, so a supervisor or test reading the
/// pipe sees the port at once.
private func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

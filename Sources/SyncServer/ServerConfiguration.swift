public import Foundation
public import Logging
public import SyncCore

/// Everything `buildApplication` needs. `fieldsyncd` fills it from flags and
/// environment; tests fill it directly.
public struct ServerConfiguration: Sendable {
    /// The data directory: database, audit key, anchors, admin token (0700).
    public var dataDirectory: URL
    public var host: String
    /// 0 picks a free port.
    public var port: Int
    /// Largest request body accepted; advertised to clients for chunking.
    public var maxBody: Int
    public var schema: Schema
    public var policy: PolicyFile
    /// How long an enrollment code stays valid.
    public var enrollmentCodeLifetime: TimeInterval
    /// How often the audit chain head is anchored.
    public var anchorInterval: TimeInterval
    public var logger: Logger
    /// The wall clock in milliseconds since 1970 (injected for tests).
    public var clock: @Sendable () -> UInt64

    public init(dataDirectory: URL, host: String = "127.0.0.1", port: Int = 8080, maxBody: Int = 8 << 20,
                schema: Schema = .defaultHouseholdPlan(), policy: PolicyFile? = nil,
                enrollmentCodeLifetime: TimeInterval = 72 * 3600, anchorInterval: TimeInterval = 300,
                logger: Logger = Logger(label: "fieldsyncd"),
                clock: @escaping @Sendable () -> UInt64 = { UInt64(Date().timeIntervalSince1970 * 1000) }) {
        self.dataDirectory = dataDirectory
        self.host = host
        self.port = port
        self.maxBody = maxBody
        self.schema = schema
        self.policy = policy ?? .defaultPolicy(schema: schema)
        self.enrollmentCodeLifetime = enrollmentCodeLifetime
        self.anchorInterval = anchorInterval
        self.logger = logger
        self.clock = clock
    }
}

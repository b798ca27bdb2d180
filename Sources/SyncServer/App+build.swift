import UnixSignals
import HTTPTypes
public import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import SyncCore

/// A running FieldSync server: what `fieldsyncd`, the demo, the benchmarks
/// and the tests start. `buildApplication` wires the store, the routes and
/// the audit anchoring; `start` runs it until `stop` or a signal.
public final class FieldSyncServer: Sendable {
    /// The port actually bound (useful with port 0).
    public let port: Int
    /// The first admin's token, on the first start only.
    public let adminToken: String?
    public let configuration: ServerConfiguration
    private let group: ServiceGroup
    private let task: Task<Void, any Error>
    private let store: ServerStore

    private init(port: Int, adminToken: String?, configuration: ServerConfiguration, group: ServiceGroup,
                 task: Task<Void, any Error>, store: ServerStore) {
        self.port = port
        self.adminToken = adminToken
        self.configuration = configuration
        self.group = group
        self.task = task
        self.store = store
    }

    public var baseURL: URL { URL(string: "http://\(configuration.host == "0.0.0.0" ? "127.0.0.1" : configuration.host):\(port)")! }

    /// Opens the store, creates the first admin if needed and starts serving.
    /// Returns once the port is bound.
    public static func start(_ configuration: ServerConfiguration, handleSignals: Bool = false) async throws -> FieldSyncServer {
        let metrics = ServerMetrics()
        let store = try ServerStore(configuration: configuration, metrics: metrics)
        let adminToken = try store.bootstrapAdmin()
        let (bound, continuation) = AsyncStream<Int>.makeStream()
        let router = Router()
        SyncRoutes(store: store, locks: DeviceLocks()).register(on: router)
        AdminRoutes(store: store).register(on: router)
        HealthRoutes(store: store).register(on: router)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "fieldsyncd"),
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? configuration.port)
                continuation.finish()
            },
            logger: configuration.logger)
        let anchoring = AuditAnchoring(store: store, interval: configuration.anchorInterval)
        let group = ServiceGroup(configuration: .init(services: [app, anchoring],
                                                      gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [],
                                                      logger: configuration.logger))
        let task = Task {
            // Ending the stream here too: when the listener cannot bind, the group stops without
            // ever reporting a port, and the wait below would never end.
            defer {
                continuation.finish()
                store.close()
            }
            try await group.run()
        }
        var port: Int?
        for await value in bound { port = value }
        guard let port else {
            task.cancel()
            var errno: Int32?
            if case .failure(let error) = await task.result { errno = (error as? IOError)?.errnoCode }
            let reason = errno.map { " (\(String(cString: strerror($0))))" } ?? ""
            // The port is the usual culprit; a host that is not this machine's (or not an address) is the other.
            let advice = switch errno {
            case EADDRINUSE: "Is another server using the port? Choose another with --port, or stop the other one."
            case EACCES: "Ports below 1024 need privileges: choose another with --port (and a reverse proxy in front)."
            case EADDRNOTAVAIL, nil: "Is \(configuration.host) an address of this machine? Give --host 127.0.0.1, 0.0.0.0 or one of its addresses."
            default: "Check --host and --port, and the system's limits (open files, sockets)."
            }
            throw ServerError(.unavailable, "fieldsyncd could not listen on \(configuration.host):\(configuration.port)\(reason). \(advice)",
                              status: .serviceUnavailable)
        }
        return FieldSyncServer(port: port, adminToken: adminToken, configuration: configuration, group: group, task: task, store: store)
    }

    /// Finishes in-flight requests, anchors the audit head, closes the store.
    public func stop() async {
        await group.triggerGracefulShutdown()
        _ = await task.result
    }

    /// Waits until the server stops (by a signal, when started with `handleSignals`).
    public func wait() async throws {
        try await task.value
    }
}

/// Anchors the audit chain head periodically (DESIGN §6); the store anchors once more at shutdown.
struct AuditAnchoring: Service {
    let store: ServerStore
    let interval: TimeInterval

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    try await Task.sleep(for: .seconds(interval))
                    store.anchorAudit()
                }
            }
        } catch is CancellationError {
            // Shutdown: the store anchors the head once more when it closes.
        }
    }
}

/// The HTTP application for a configuration (hummingbird-template style).
public func buildApplication(_ configuration: ServerConfiguration) async throws -> FieldSyncServer {
    try await FieldSyncServer.start(configuration)
}

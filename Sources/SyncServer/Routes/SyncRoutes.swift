import HTTPTypes
import Foundation
import Hummingbird
import SyncCore

/// `POST /v1/sync` and `POST /v1/enroll`.
struct SyncRoutes {
    let store: ServerStore
    let locks: DeviceLocks

    func register(on router: Router<BasicRequestContext>) {
        let store = self.store
        let locks = self.locks
        router.post("/v1/enroll") { request, context in
            await HTTPSupport.guarded(request, context: context, route: "enroll", metrics: store.metrics) {
                let body = try await HTTPSupport.body(request, limit: 64 * 1024)
                let enroll = try HTTPSupport.decodeJSON(EnrollRequest.self, from: body)
                return HTTPSupport.json(try await store.enroll(enroll), request: request)
            }
        }
        router.post("/v1/sync") { request, context in
            await HTTPSupport.guarded(request, context: context, route: "sync", metrics: store.metrics) {
                let started = ContinuousClock.now
                guard let token = HTTPSupport.bearer(request) else { throw ServerError.unauthorized() }
                let device = try await store.authenticateDevice(token: token)
                let body = try await HTTPSupport.body(request, limit: store.configuration.maxBody)
                let json = HTTPSupport.wantsJSON(request)
                let syncRequest: SyncRequest
                do {
                    syncRequest = json ? try MessageJSON.decode(SyncRequest.self, from: Data(body)) : try SyncRequest(binary: body)
                } catch let error as SyncCoreError {
                    let code: ServerError.Code = error.code == .unsupportedVersion ? .unsupportedVersion : .badRequest
                    throw ServerError(code, error.message, status: .badRequest)
                }
                try Self.check(syncRequest)
                let response = try await locks.withLock(device.id) { try await store.sync(syncRequest, device: device) }
                let bytes = json ? Array(MessageJSON.encode(response)) : response.binaryEncoded()
                let duration = ContinuousClock.now - started
                store.metrics.observeSync(seconds: Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
                return HTTPSupport.response(bytes: bytes, contentType: json ? HTTPSupport.jsonType : HTTPSupport.binaryType, request: request)
            }
        }
    }

    /// Shape checks the decoder cannot make.
    static func check(_ request: SyncRequest) throws {
        guard request.version >= 1 else { throw ServerError.badRequest("version must be 1 or higher.") }
        // The binary decoder refuses a newer version; the JSON decoder does not look, so check here.
        guard request.version <= syncProtocolVersion else {
            throw ServerError(.unsupportedVersion, "The request uses protocol version \(request.version); this server speaks \(syncProtocolVersion). Upgrade FieldSync.",
                              status: .badRequest)
        }
        guard request.version >= oldestSyncProtocolVersion else {
            throw ServerError(.unsupportedVersion, "The request uses protocol version \(request.version), which this server no longer reads (it speaks \(syncProtocolVersion)). Upgrade fieldcli on this device.",
                              status: .badRequest)
        }
        guard request.limit > 0 else { throw ServerError.badRequest("limit must be a positive number of bytes.") }
        guard request.ops.count <= 100_000, request.auditEvents.count <= 100_000 else {
            throw ServerError(.tooLarge, "Too many ops in one request; send at most 100000.", status: .contentTooLarge)
        }
        if let held = request.held.segments, held.count > 1_000_000 {
            throw ServerError(.tooLarge, "The held list is too long.", status: .contentTooLarge)
        }
        // The store keeps cursors, dot counters and device audit sequences as
        // SQLite integers: a larger number is malformed (it would trap on conversion).
        let storable = UInt64(Int64.max)
        guard request.cursor.seq <= storable, (request.cursor.resumeSeq ?? 0) <= storable else {
            throw ServerError.badRequest("The cursor is out of range; sync again from cursor 0.")
        }
        guard request.ops.allSatisfy({ $0.dot.counter <= storable && ($0.absorbs ?? []).allSatisfy { $0 <= storable } }) else {
            throw ServerError.badRequest("An op counter is out of range (at most \(storable)).")
        }
        guard request.auditEvents.allSatisfy({ $0.deviceSeq <= storable }) else {
            throw ServerError.badRequest("An audit event sequence is out of range (at most \(storable)).")
        }
    }
}

/// Serialises syncs per device (DESIGN §5) without blocking other devices.
actor DeviceLocks {
    private var busy: Set<String> = []
    private var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]

    func withLock<T: Sendable>(_ device: String, _ body: @Sendable () async throws -> T) async throws -> T {
        await acquire(device)
        defer { release(device) }
        return try await body()
    }

    private func acquire(_ device: String) async {
        if !busy.contains(device) {
            busy.insert(device)
            return
        }
        await withCheckedContinuation { waiters[device, default: []].append($0) }
    }

    private func release(_ device: String) {
        if var queue = waiters[device], !queue.isEmpty {
            let next = queue.removeFirst()
            waiters[device] = queue.isEmpty ? nil : queue
            next.resume()
        } else {
            busy.remove(device)
        }
    }
}

import Foundation
import SyncCore
import Synchronization

/// Prometheus text metrics (DESIGN §5 `GET /metrics`): requests, sync
/// latency, ops accepted and rejected by reason, store size. Counters only,
/// never personal data.
public final class ServerMetrics: Sendable {
    private struct State {
        var requests: [String: Int] = [:]
        var accepted = 0
        var rejected: [String: Int] = [:]
        var latencyBuckets = [Int](repeating: 0, count: ServerMetrics.bounds.count + 1)
        var latencySum = 0.0
        var latencyCount = 0
        /// Requests that failed because SQLite found the database file damaged.
        var storeDamage = 0
    }

    static let bounds: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
    private let state = Mutex(State())

    public init() {}

    func countRequest(route: String, status: Int) {
        state.withLock { $0.requests["\(route)|\(status)", default: 0] += 1 }
    }

    func recordPush(_ push: PushResult) {
        state.withLock { state in
            state.accepted += push.newlyAcceptedCount
            for reason in push.newlyRejected { state.rejected[reason.rawValue, default: 0] += 1 }
        }
    }

    func observeSync(seconds: Double) {
        state.withLock { state in
            let index = Self.bounds.firstIndex { seconds <= $0 } ?? Self.bounds.count
            state.latencyBuckets[index] += 1
            state.latencySum += seconds
            state.latencyCount += 1
        }
    }

    /// A request failed on a damaged database file: `/health` reports it from now on.
    func recordStoreDamage() { state.withLock { $0.storeDamage += 1 } }
    var storeDamageSeen: Bool { state.withLock { $0.storeDamage > 0 } }

    func render(storeBytes: Int64) -> String {
        state.withLock { state in
            var lines: [String] = []
            lines.append("# HELP fieldsync_http_requests_total HTTP requests by route and status.")
            lines.append("# TYPE fieldsync_http_requests_total counter")
            for key in state.requests.keys.sorted() {
                let parts = key.split(separator: "|")
                lines.append("fieldsync_http_requests_total{route=\"\(parts[0])\",status=\"\(parts[1])\"} \(state.requests[key]!)")
            }
            lines.append("# HELP fieldsync_sync_duration_seconds Time to answer POST /v1/sync.")
            lines.append("# TYPE fieldsync_sync_duration_seconds histogram")
            var cumulative = 0
            for (index, bound) in Self.bounds.enumerated() {
                cumulative += state.latencyBuckets[index]
                lines.append("fieldsync_sync_duration_seconds_bucket{le=\"\(bound)\"} \(cumulative)")
            }
            cumulative += state.latencyBuckets[Self.bounds.count]
            lines.append("fieldsync_sync_duration_seconds_bucket{le=\"+Inf\"} \(cumulative)")
            lines.append("fieldsync_sync_duration_seconds_sum \(state.latencySum)")
            lines.append("fieldsync_sync_duration_seconds_count \(state.latencyCount)")
            lines.append("# HELP fieldsync_ops_accepted_total Ops accepted.")
            lines.append("# TYPE fieldsync_ops_accepted_total counter")
            lines.append("fieldsync_ops_accepted_total \(state.accepted)")
            lines.append("# HELP fieldsync_ops_rejected_total Ops rejected, by reason.")
            lines.append("# TYPE fieldsync_ops_rejected_total counter")
            for reason in RefusalReason.all.map(\.rawValue) {
                lines.append("fieldsync_ops_rejected_total{reason=\"\(reason)\"} \(state.rejected[reason] ?? 0)")
            }
            lines.append("# HELP fieldsync_store_bytes Size of the database and its WAL.")
            lines.append("# TYPE fieldsync_store_bytes gauge")
            lines.append("fieldsync_store_bytes \(storeBytes)")
            lines.append("# HELP fieldsync_store_damage_total Requests that failed because the database file is damaged.")
            lines.append("# TYPE fieldsync_store_damage_total counter")
            lines.append("fieldsync_store_damage_total \(state.storeDamage)")
            return lines.joined(separator: "\n") + "\n"
        }
    }
}

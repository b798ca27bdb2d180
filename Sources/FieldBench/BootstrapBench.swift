import Foundation
import SyncCore
import SyncServer

/// `fieldbench bootstrap`: a new device pulls 200 households with about 100
/// ops of history each from a real server on loopback. Also measures the wire
/// size of one home visit pushed and acknowledged.
enum BootstrapBench {
    struct Result: Encodable {
        var benchmark = "bootstrap"
        var households: Int
        var ops: Int
        var wall_s: Double
        var rounds: Int
        var body_bytes: Int
        var body_bytes_gzip: Int
        var raw_text_bytes: Int
        var ratio_raw: Double
        var ratio_gzip: Double
        var converged: Bool
        var visit_text_bytes: Int
        var visit_up_bytes: Int
        var visit_down_bytes: Int
    }

    static func run(households count: Int = 200, opsPerHousehold: Int = 100, seed: UInt64 = 11) async throws -> Result {
        let server = try LiveServer()
        defer { server.stop() }
        var rng = SplitMix64(seed: seed)
        var writer = try await server.enrollDevice(user: "schrijver", role: "wmo-consulent")
        var households: [HouseholdID] = []
        for _ in 0..<count {
            let household = try await server.createHousehold()
            try await server.assign("schrijver", household)
            households.append(household)
        }
        _ = try await writer.sync(server, now: LoadBench.wall())
        var ops = 0
        for household in households {
            let before = writer.replica.pending.count
            while writer.replica.pending.count - before < opsPerHousehold {
                try HomeVisit.perform(on: &writer.replica, household: household, rng: &rng, wall: LoadBench.wall())
            }
            ops += writer.replica.pending.count - before
            if writer.replica.pending.count > 2000 { _ = try await writer.sync(server, now: LoadBench.wall()) }
        }
        _ = try await writer.sync(server, now: LoadBench.wall())

        var reader = try await server.enrollDevice(user: "nieuw", role: "wmo-consulent")
        for household in households { try await server.assign("nieuw", household) }
        let started = Date()
        let stats = try await reader.sync(server, now: LoadBench.wall())
        let wall = Date().timeIntervalSince(started)
        var raw = 0
        var converged = true
        for (key, state) in reader.replica.confirmed {
            raw += textBytes(state)
            if writer.replica.confirmed[key]?.canonicalBytes() != state.canonicalBytes() { converged = false }
        }

        // One home visit, pushed and acknowledged, with nothing else changed.
        var visitor = writer
        _ = try await visitor.sync(server, now: LoadBench.wall())
        let visitText = try HomeVisit.perform(on: &visitor.replica, household: households[0], rng: &rng, wall: LoadBench.wall())
        let visit = try await visitor.sync(server, now: LoadBench.wall())
        return Result(households: count, ops: ops, wall_s: (wall * 1000).rounded() / 1000, rounds: stats.rounds,
                      body_bytes: stats.bytesDown, body_bytes_gzip: stats.compressedDown, raw_text_bytes: raw,
                      ratio_raw: (Double(stats.bytesDown) / Double(max(1, raw)) * 1000).rounded() / 1000,
                      ratio_gzip: (Double(stats.compressedDown) / Double(max(1, raw)) * 1000).rounded() / 1000,
                      converged: converged, visit_text_bytes: visitText, visit_up_bytes: visit.bytesUp, visit_down_bytes: visit.bytesDown)
    }

    /// The text a state carries: every value, entry and item text.
    static func textBytes(_ state: SegmentState) -> Int {
        var total = 0
        for register in state.fields.values { total += register.values.reduce(0) { $0 + $1.value.utf8.count } }
        for log in state.logs.values { total += log.entries.reduce(0) { $0 + $1.body.text.utf8.count } }
        for collection in state.collections.values {
            for item in collection.items { total += item.text.values.reduce(0) { $0 + $1.value.utf8.count } }
        }
        return total
    }
}

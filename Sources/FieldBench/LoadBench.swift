import Foundation
import SyncCore
import SyncServer
import Synchronization

/// `fieldbench load`: a real fieldsyncd on loopback, N enrolled devices
/// syncing open-loop on Poisson schedules (latency from the scheduled time,
/// so no coordinated omission), then a check that every acknowledged op is on
/// the server and the audit chain verifies.
enum LoadBench {
    struct Result: Encodable {
        var benchmark = "load"
        var devices: Int
        var households: Int
        var mode: String
        var seconds: Double
        var offered_syncs_per_s: Double?
        var achieved_syncs_per_s: Double
        var ops_per_s: Double
        var syncs: Int
        var ops_acknowledged: Int
        var p50_ms: Double
        var p99_ms: Double
        var max_ms: Double
        var errors: Int
        var lost: Int
        var audit_ok: Bool
        var bytes_up_per_sync: Double
        var bytes_down_per_sync: Double
        /// CPU time per sync of the server and of the devices' side (this process), in ms.
        var server_cpu_ms_per_sync: Double
        var devices_cpu_ms_per_sync: Double
    }

    final class Recorder: Sendable {
        struct State {
            var latencies: [Double] = []
            var errors = 0
            var acknowledged: [(SegmentKey, Dot)] = []
            var bytesUp = 0
            var bytesDown = 0
        }
        let state = Mutex(State())
    }

    static func run(devices deviceCount: Int, rate: Double?, seconds: Double, seed: UInt64 = 7) async throws -> Result {
        let server = try LiveServer(maxConnections: max(64, deviceCount))
        defer { server.stop() }
        let householdCount = max(1, deviceCount / 2)
        var households: [HouseholdID] = []
        for _ in 0..<householdCount { households.append(try await server.createHousehold()) }
        var devices: [BenchDevice] = []
        var rng = SplitMix64(seed: seed)
        for index in 0..<deviceCount {
            var device = try await server.enrollDevice(user: "w\(index)", role: "wmo-consulent")
            // Three households per device: each household is shared by about six devices.
            for k in 0..<3 {
                let household = households[(index + k * 7 + Int.random(in: 0..<householdCount, using: &rng)) % householdCount]
                if !device.households.contains(household) {
                    try await server.assign("w\(index)", household)
                    device.households.append(household)
                }
            }
            devices.append(device)
        }
        // Everyone pulls the plans before the clock starts.
        for index in devices.indices { _ = try await devices[index].sync(server, now: wall()) }

        let recorder = Recorder()
        let (serverCPUBefore, devicesCPUBefore) = (server.cpuSeconds, processCPUSeconds())
        let started = Date()
        let deadline = started.addingTimeInterval(seconds)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in devices.indices {
                var device = devices[index]
                var deviceRNG = SplitMix64(seed: seed &+ UInt64(index) &* 0x9E37)
                // Open loop: the schedule is fixed up front; a late sync is still measured from its slot.
                var schedule: [Date] = []
                if let rate {
                    let perDevice = rate / Double(deviceCount)
                    var t = 0.0
                    while true {
                        t += -log(1 - Double.random(in: 0..<1, using: &deviceRNG)) / perDevice
                        if t >= seconds { break }
                        schedule.append(started.addingTimeInterval(t))
                    }
                }
                group.addTask {
                    var slot = 0
                    while true {
                        let scheduled: Date
                        if rate != nil {
                            guard slot < schedule.count else { break }
                            scheduled = schedule[slot]
                            slot += 1
                            let wait = scheduled.timeIntervalSinceNow
                            if wait > 0 { try await Task.sleep(nanoseconds: UInt64(wait * 1e9)) }
                        } else {
                            scheduled = Date()
                            if scheduled >= deadline { break }
                        }
                        let household = device.households[Int.random(in: 0..<device.households.count, using: &deviceRNG)]
                        do {
                            try HomeVisit.perform(on: &device.replica, household: household, rng: &deviceRNG, wall: wall())
                            let stats = try await device.sync(server, now: wall())
                            let latency = Date().timeIntervalSince(scheduled)
                            recorder.state.withLock { state in
                                if stats.failed { state.errors += 1 } else { state.latencies.append(latency) }
                                state.acknowledged += stats.accepted
                                state.bytesUp += stats.bytesUp
                                state.bytesDown += stats.bytesDown
                            }
                        } catch {
                            recorder.state.withLock { $0.errors += 1 }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = max(seconds, Date().timeIntervalSince(started))
        let (serverCPU, devicesCPU) = (server.cpuSeconds - serverCPUBefore, processCPUSeconds() - devicesCPUBefore)
        let state = recorder.state.withLock { $0 }

        // Every acknowledged op must be on the server: a fresh verifier device
        // assigned to every household pulls snapshots and checks each dot.
        var verifier = try await server.enrollDevice(user: "verifier", role: "wmo-consulent")
        for household in households { try await server.assign("verifier", household) }
        _ = try await verifier.sync(server, now: wall())
        let lost = state.acknowledged.filter { key, dot in !(verifier.replica.confirmed[key]?.context.contains(dot) ?? false) }.count
        let verify = try await server.get("/v1/admin/audit/verify", token: server.adminToken)
        let auditOK = (try? JSONDecoder().decode(AuditVerification.self, from: Data(verify.body)))?.ok ?? false

        let sorted = state.latencies.sorted()
        func percentile(_ p: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            return (sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] * 1e4).rounded() / 10
        }
        let syncs = sorted.count
        return Result(devices: deviceCount, households: householdCount, mode: rate == nil ? "closed-loop (max)" : "open-loop",
                      seconds: (elapsed * 100).rounded() / 100, offered_syncs_per_s: rate,
                      achieved_syncs_per_s: (Double(syncs) / elapsed * 10).rounded() / 10,
                      ops_per_s: (Double(state.acknowledged.count) / elapsed * 10).rounded() / 10,
                      syncs: syncs, ops_acknowledged: state.acknowledged.count, p50_ms: percentile(0.5), p99_ms: percentile(0.99),
                      max_ms: ((sorted.last ?? 0) * 1e4).rounded() / 10, errors: state.errors, lost: lost, audit_ok: auditOK,
                      bytes_up_per_sync: syncs > 0 ? Double(state.bytesUp / syncs) : 0,
                      bytes_down_per_sync: syncs > 0 ? Double(state.bytesDown / syncs) : 0,
                      server_cpu_ms_per_sync: syncs > 0 ? (serverCPU / Double(syncs) * 1e5).rounded() / 100 : 0,
                      devices_cpu_ms_per_sync: syncs > 0 ? (devicesCPU / Double(syncs) * 1e5).rounded() / 100 : 0)
    }

    static func wall() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }
}

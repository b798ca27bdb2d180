import Foundation
import GRDB
import Testing
import SyncCore
import SyncServer

/// Point 8: `GET /health` and `GET /metrics` (Prometheus text).
@Suite("Health and metrics")
struct HealthMetricsTests {
    /// The value of one sample line (`name{labels} value`).
    static func sample(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            if parts.count == 2, parts[0] == series { return Double(parts[1]) }
        }
        return nil
    }

    @Test("/health answers ok when the store is reachable, with every commit fsynced (synchronous full)")
    func healthIsOK() async throws {
        try await withServer { server in
            let reply = try await server.http.send("GET", "/health")
            #expect(reply.status == 200)
            #expect(reply.isJSON)
            #expect(try reply.decode([String: String].self) == ["status": "ok", "synchronous": "full"])
        }
    }

    @Test("/health answers while every write waits for the database lock: it never queues behind the writer")
    func healthDoesNotWaitForTheWriter() async throws {
        try await withServer { server in
            var wendy = try await server.device("wendy", role: "wmo-consulent")
            // Another connection takes the write lock, so the server's next write
            // waits for it inside the writer (for up to its 10 s busy timeout).
            var configuration = Configuration()
            configuration.allowsUnsafeTransactions = true  // the lock is held across accesses on purpose
            let blocker = try DatabaseQueue(path: server.directory.appendingPathComponent("fieldsync.sqlite").path,
                                            configuration: configuration)
            try await blocker.writeWithoutTransaction { try $0.execute(sql: "BEGIN IMMEDIATE") }
            let wall = server.clock.now
            let sync = Task { try await wendy.roundTrip(server.http, wall: wall) }
            try await Task.sleep(for: .milliseconds(500))

            let started = ContinuousClock.now
            let reply = try await server.http.send("GET", "/health")
            let waited = ContinuousClock.now - started
            try await blocker.writeWithoutTransaction { try $0.execute(sql: "COMMIT") }
            _ = try await sync.value

            #expect(reply.status == 200)
            #expect(try reply.decode([String: String].self) == ["status": "ok", "synchronous": "full"])
            #expect(waited < .seconds(5), "/health waited \(waited) for the writer")
        }
    }

    @Test("/health turns 503 \"damaged\" once a request met a damaged database file, and /metrics counts it")
    func healthReportsADamagedStore() async throws {
        let first = try await TestServer.start()
        defer { first.removeDirectory() }
        let s = try await PlanScenario.make(first)
        await first.stop()
        // Overwrite the elements table's root page: the file still opens, the server starts, a pull fails.
        let database = first.databaseURL
        let inspector = try DatabaseQueue(path: database.path)
        let (rootPage, pageSize) = try await inspector.read { db in
            (try Int.fetchOne(db, sql: "SELECT rootpage FROM sqlite_master WHERE name = 'elements'")!,
             try Int.fetchOne(db, sql: "PRAGMA page_size")!)
        }
        try inspector.close()
        let handle = try FileHandle(forWritingTo: database)
        try handle.seek(toOffset: UInt64((rootPage - 1) * pageSize))
        try handle.write(contentsOf: Data(repeating: 0xEE, count: pageSize))
        try handle.close()

        let server = try await TestServer.start(directory: first.directory, logs: first.logs)
        #expect(try await server.http.send("GET", "/health").status == 200, "nothing has met the damage yet")
        let nina = try await server.device("nina", role: "wmo-consulent", initialSync: false)
        try await server.assign("nina", s.household)
        let (reply, _) = try await postSync(server.http, token: nina.token, request: nina.replica.makeRequest(), encoding: .binary)
        #expect(reply.status == 500)
        let health = try await server.http.send("GET", "/health")
        #expect(health.status == 503)
        #expect(try health.decode([String: String].self)["status"] == "damaged")
        let metrics = String(decoding: try await server.http.send("GET", "/metrics").body, as: UTF8.self)
        #expect(metrics.contains("fieldsync_store_damage_total 1"))
        #expect(server.logs.all.contains { $0.hasPrefix("critical") && $0.contains("restore fieldsync.sqlite from backup") })
        await server.stop()
    }

    @Test("/metrics is Prometheus text with requests, sync latency, ops accepted and rejected by reason, store size")
    func metricsCountWhatHappened() async throws {
        try await withServer { server in
            var s = try await PlanScenario.make(server)
            let wgs = s.wgsOpByWendy()
            var request = s.wendy.replica.makeRequest()
            request.ops = [wgs]
            _ = try await s.wendy.roundTrip(server.http, wall: server.clock.now, request: request)
            _ = try await server.http.send("POST", "/v1/sync", body: Data("x".utf8), token: "fsd_nope")

            let reply = try await server.http.send("GET", "/metrics")
            #expect(reply.status == 200)
            #expect(reply.header("content-type")?.hasPrefix("text/plain") == true)
            let text = reply.text
            #expect(text.contains("# TYPE fieldsync_ops_accepted_total counter"))
            #expect(Self.sample(text, "fieldsync_ops_accepted_total") == Double(s.firstOps.count))
            #expect(Self.sample(text, "fieldsync_ops_rejected_total{reason=\"purposeNotGranted\"}") == 1)
            #expect(Self.sample(text, "fieldsync_ops_rejected_total{reason=\"invalid\"}") == 0)
            #expect(text.contains("# TYPE fieldsync_sync_duration_seconds histogram"))
            let syncs = try #require(Self.sample(text, "fieldsync_sync_duration_seconds_count"))
            #expect(syncs >= 4)
            #expect(Self.sample(text, "fieldsync_sync_duration_seconds_bucket{le=\"+Inf\"}") == syncs)
            #expect(Self.sample(text, "fieldsync_http_requests_total{route=\"sync\",status=\"200\"}") == syncs)
            #expect(Self.sample(text, "fieldsync_http_requests_total{route=\"sync\",status=\"401\"}") == 1)
            #expect((Self.sample(text, "fieldsync_http_requests_total{route=\"enroll\",status=\"200\"}") ?? 0) == 2)
            #expect((Self.sample(text, "fieldsync_store_bytes") ?? 0) > 0)
            #expect(!text.contains("status=\"500\""))
            // Metrics carry no personal data.
            #expect(!text.contains("wendy") && !text.contains(s.household.description))
        }
    }
}

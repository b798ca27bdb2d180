import Foundation
import GRDB
import Testing
import SyncCore
import SyncServer

/// Acknowledged means durable (DESIGN §6): commits are fsynced, and the WAL
/// is copied into the database file without stalling the writer.
@Suite("Durability")
struct DurabilityTests {
    @Test("a WAL store opened through GRDB syncs only at checkpoints until DurableCommits sets FULL on its writer")
    func walStoresAreMadeDurable() throws {
        let directory = makeTemporaryDirectory("durable")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var config = Configuration()
        config.journalMode = .wal
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        let pool = try DatabasePool(path: directory.appendingPathComponent("pool.sqlite").path, configuration: config)
        // GRDB's own WAL set-up overrides what prepareDatabase asked for: the reason DurableCommits exists.
        #expect(try DurableCommits.mode(pool) == "normal")
        try DurableCommits.require(pool)
        #expect(try DurableCommits.mode(pool) == "full")
        let queue = try DatabaseQueue(path: directory.appendingPathComponent("queue.sqlite").path, configuration: config)
        try DurableCommits.require(queue)
        #expect(try DurableCommits.mode(queue) == "full")
    }

    @Test("the WAL is copied into the database file in the background while the server runs")
    func theWALIsCheckpointedInTheBackground() async throws {
        try await withServer { server in
            var s = try await PlanScenario.make(server)
            let before = try Self.fileSize(server.databaseURL)
            // About 300 KB of fictional contact notes: far below the writer's own checkpoint threshold.
            for round in 0..<20 {
                for note in 0..<25 {
                    try s.wendy.replica.appendLog(household: s.household, purpose: .regie, kind: "telefoon", occurredAt: nil,
                                                  text: "Ronde \(round), notitie \(note): " + String(repeating: "afspraak over de planning ", count: 24),
                                                  wall: server.clock.now)
                }
                try await s.wendy.sync(server)
            }
            var grown = false
            for _ in 0..<40 where !grown {
                try await Task.sleep(for: .milliseconds(100))
                grown = try Self.fileSize(server.databaseURL) > before + 200_000
            }
            #expect(grown, "the database file took in the WAL's pages before the server stopped")
        }
    }

    static func fileSize(_ url: URL) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
    }
}

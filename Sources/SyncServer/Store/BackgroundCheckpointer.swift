import Foundation
import GRDB
import Synchronization

/// Copies the WAL back into the database file off the writer's path.
///
/// SQLite's automatic checkpoint runs inside the commit that crosses its
/// threshold, on the one writer thread, and every sync queued behind that
/// commit waits while the pages are copied and the database file is fsynced.
/// Here a connection of its own runs a PASSIVE checkpoint every 50 ms, which
/// blocks neither the writer nor the readers, so the writer's own checkpoint
/// (kept at SQLite's 1 000 pages) finds most pages copied. Often and small
/// because each pass ends with an fsync of the database file, and on a disk
/// that flushes slowly a large one delayed the WAL's commit fsyncs by up to
/// 200 ms (seen with `perf trace` at 200 ms intervals; at 50 ms, none).
/// The writer's stays because under steady load only it can start the WAL
/// over: that needs a transaction that begins with every frame copied, and
/// the writer's checkpoint is the one that runs right before its next
/// transaction. (Without it the WAL grew to the fallback size and stayed.)
final class BackgroundCheckpointer: Sendable {
    static let interval: Duration = .milliseconds(50)
    /// Pages the writer lets the WAL reach before checkpointing itself (SQLite's default).
    static let writerCheckpointPages = 1_000

    private let connection: DatabaseQueue
    private let loop = Mutex<Task<Void, Never>?>(nil)

    init(databasePath: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        connection = try DatabaseQueue(path: databasePath, configuration: configuration)
        let connection = self.connection
        let task = Task.detached(priority: .utility) {
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.interval)
                // A failed pass (the file busy, the disk full) is retried at the next tick;
                // the writer's fallback checkpoint keeps the WAL bounded meanwhile.
                guard !Task.isCancelled else { return }
                _ = try? connection.writeWithoutTransaction { db in
                    try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(PASSIVE)")
                }
            }
        }
        loop.withLock { $0 = task }
    }

    /// Stops the loop and closes the connection (before the store closes its own).
    /// A pass in flight finishes first: closing waits for the connection's queue.
    func stop() {
        loop.withLock { current in
            current?.cancel()
            current = nil
        }
        try? connection.close()
    }
}

import Foundation
import GRDB
import Synchronization

/// Copies the WAL back into the database file off the writer's path.
///
/// SQLite's automatic checkpoint runs inside the commit that crosses its
/// threshold, on the one writer thread: every sync queued behind that commit
/// waited while up to a thousand pages were copied and the database file was
/// fsynced, which showed as the p99 of `fieldbench load`. Here a connection of
/// its own runs a PASSIVE checkpoint twice a second; a passive checkpoint
/// never blocks the writer or the readers, and the writer's next commit
/// starts the WAL over once everything in it has been copied and no reader
/// still reads from it. The writer's
/// own automatic checkpoint stays on at a high threshold, as a safety net
/// should this one fall behind.
final class BackgroundCheckpointer: Sendable {
    static let interval: Duration = .milliseconds(500)
    /// Pages the writer lets the WAL reach before checkpointing itself (64 MiB).
    static let writerFallbackPages = 16_000

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

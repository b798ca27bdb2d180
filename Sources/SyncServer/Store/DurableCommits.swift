public import GRDB

/// Makes every commit of a store reach the disk before it returns (DESIGN §6:
/// acknowledged means durable), for the server's store and the device's.
///
/// `PRAGMA synchronous = FULL` in `prepareDatabase` is not enough: when GRDB
/// turns WAL on, it sets the writer connection to `NORMAL` afterwards, which
/// syncs only at checkpoints, so a power cut could lose commits already
/// acknowledged. This sets FULL on the writer after GRDB is done and checks it.
public enum DurableCommits {
    /// Sets and verifies `synchronous = FULL` on the writer connection, and
    /// returns the mode's name (`full`) for the store to report.
    @discardableResult
    public static func require(_ writer: some DatabaseWriter) throws -> String {
        let mode = try writer.writeWithoutTransaction { db -> Int? in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            return try Int.fetchOne(db, sql: "PRAGMA synchronous")
        }
        guard mode == 2 else {
            throw DatabaseError(message: "SQLite did not accept synchronous = FULL (it reports \(mode.map(String.init) ?? "nothing")); commits would not be durable")
        }
        return "full"
    }

    /// The writer's synchronous mode as SQLite names it (`full` once `require` ran).
    public static func mode(_ writer: some DatabaseWriter) throws -> String {
        let value = try writer.writeWithoutTransaction { try Int.fetchOne($0, sql: "PRAGMA synchronous") }
        return ["off", "normal", "full", "extra"][min(3, max(0, value ?? 0))]
    }
}

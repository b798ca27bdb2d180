import Foundation
import GRDB
import SyncCore

/// Direct access to the server's SQLite file, for what HTTP cannot show:
/// that an acknowledged op is committed, that state is byte-identical, and
/// tampering with the audit table while the server is stopped.
enum StoreFile {
    /// A read-only connection (the server may be running: WAL lets both in).
    static func read<T>(_ url: URL, _ body: (Database) throws -> T) throws -> T {
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: url.path, configuration: configuration)
        defer { try? queue.close() }
        return try queue.read(body)
    }

    /// A writing connection: only while the server is stopped.
    static func write(_ url: URL, _ body: (Database) throws -> Void) throws {
        let queue = try DatabaseQueue(path: url.path)
        defer { try? queue.close() }
        try queue.write(body)
    }

    /// Every row of every table, in a stable order, with exact values (blobs byte for byte).
    static func dump(_ url: URL) throws -> [String: [[DatabaseValue]]] {
        try read(url) { db in
            var result: [String: [[DatabaseValue]]] = [:]
            let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            for table in tables {
                let columns = try Row.fetchAll(db, sql: "PRAGMA table_info(\"\(table)\")").count
                let order = (1...max(1, columns)).map(String.init).joined(separator: ", ")
                result[table] = try Row.fetchAll(db, sql: "SELECT * FROM \"\(table)\" ORDER BY \(order)").map { Array($0.databaseValues) }
            }
            return result
        }
    }

    /// Bytes of the database file and its WAL (what is on disk now).
    static func bytesOnDisk(_ url: URL) -> Data {
        var data = (try? Data(contentsOf: url)) ?? Data()
        data.append((try? Data(contentsOf: URL(fileURLWithPath: url.path + "-wal"))) ?? Data())
        return data
    }

    static func count(_ url: URL, _ sql: String, _ arguments: StatementArguments = []) throws -> Int {
        try read(url) { db in try Int.fetchOne(db, sql: sql, arguments: arguments) ?? 0 }
    }
}

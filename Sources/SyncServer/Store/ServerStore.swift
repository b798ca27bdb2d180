import Foundation
import GRDB
import HTTPTypes
import Logging
import SyncCore
import Synchronization

/// The durable store: SQLite through GRDB in WAL mode with
/// `synchronous=FULL` and `secure_delete=ON` (DESIGN §6). A sync's push and
/// pull share one group-committed write transaction (decision 37); admin
/// reads and audit verification read from snapshots and never wait for writes.
final class ServerStore: Sendable {
    let pool: DatabasePool
    let committer: GroupCommitter
    let checkpointer: BackgroundCheckpointer
    let audit: AuditLog
    let policyStore: PolicyStore
    let configuration: ServerConfiguration
    let metrics: ServerMetrics
    /// The writer's synchronous mode, verified at start, for `/health` (`full`:
    /// every commit is fsynced). Kept, not asked again: asking would wait for
    /// the writer connection behind a group commit and block the health check.
    let synchronousMode: String
    /// Held from open to close: one server per data directory.
    private let directoryLock: DataDirectoryLock
    /// The clock of the server's own replica (admin resolves, server-created households).
    let serverClock = Mutex(HybridLogicalClock())
    /// Policy contexts by user, valid while the store's policy version is unchanged
    /// (every change to users, assignments, grants, consent or erasures bumps it)
    /// and for at most a minute (assignment and grant expiry).
    let policyCache = Mutex([Int64: CachedPolicy]())
    /// Authenticated devices by token hash (see authenticateDevice).
    let deviceCache = Mutex([Data: DeviceRecord]())

    struct CachedPolicy: Sendable {
        var userID: Int64
        var version: UInt64
        var builtAt: UInt64
        var context: PolicyContext
        /// `context.digest`, worked out once: every sync compares it with the device's.
        var digest: Digest
    }

    /// The user's policy context and its digest, from the cache when still
    /// valid. A context built afresh comes back with `cacheAfterCommit`: it was
    /// read inside a group-commit batch whose policy change can still roll
    /// back (and its version number be reused), so only the caller, once that
    /// transaction has committed, may cache it (`cache(_:)`).
    func policyContext(_ db: Database, user: UserRow, now: UInt64) throws -> (policy: CachedPolicy, cacheAfterCommit: Bool) {
        let version = try PolicyStore.version(db)
        if var cached = policyCache.withLock({ $0[user.id] }), cached.version == version, now >= cached.builtAt, now - cached.builtAt < 60_000 {
            cached.context.serverTime = now  // not part of the digest
            return (cached, false)
        }
        let context = try policyStore.context(db, user: user, now: now, version: version)
        return (CachedPolicy(userID: user.id, version: version, builtAt: now, context: context, digest: context.digest), true)
    }

    /// Caches a policy context read from committed state.
    func cache(_ entry: CachedPolicy) {
        policyCache.withLock { $0[entry.userID] = entry }
    }
    var schema: Schema { configuration.schema }
    var now: UInt64 { configuration.clock() }

    init(configuration: ServerConfiguration, metrics: ServerMetrics) throws {
        self.configuration = configuration
        self.metrics = metrics
        try FileSecurity.makePrivateDirectory(configuration.dataDirectory)
        directoryLock = try DataDirectoryLock(directory: configuration.dataDirectory)
        var config = Configuration()
        config.journalMode = .wal
        config.busyMode = .timeout(10)
        config.prepareDatabase { db in
            // synchronous = FULL is set after GRDB's own WAL set-up (DurableCommits, below).
            try db.execute(sql: "PRAGMA secure_delete = ON")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
            // A savepoint's journal (one per sync in a group commit) stays in
            // memory instead of spilling to a temporary file the kernel writes.
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
            // The background checkpointer copies most of the WAL; the writer finishes and restarts it.
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(BackgroundCheckpointer.writerCheckpointPages)")
            // The writer also reads every pull (decision 37): 64 MiB of pages
            // keeps a municipality's hot segments out of the kernel's read path.
            // Readers' caches are emptied at every commit, so they keep the default.
            if !db.configuration.readonly { try db.execute(sql: "PRAGMA cache_size = -65536") }
        }
        let path = configuration.dataDirectory.appendingPathComponent("fieldsync.sqlite").path
        do {
            pool = try DatabasePool(path: path, configuration: config)
            synchronousMode = try DurableCommits.require(pool)
            try Self.checkSQLiteVersion(pool)
            try Migrations.migrator().migrate(pool)
        } catch where DamagedStore.isDamage(error) {
            throw ServerError(.internalError, "fieldsync.sqlite in \(configuration.dataDirectory.path) is damaged or not a FieldSync database "
                              + "(\((error as? DatabaseError)?.message ?? "unreadable")). Restore it, with its -wal file, from backup; "
                              + "the server did not start and changed nothing.", status: .internalServerError)
        }
        try pool.write { db in try SchemaBindings.checkAndRecord(configuration.schema, in: db) }
        for suffix in ["", "-wal", "-shm"] {
            let file = path + suffix
            if FileManager.default.fileExists(atPath: file) {
                try? FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file)
            }
        }
        // Before the checkpointer: a refused audit key must not leave its task running on the file.
        audit = try AuditLog(dataDirectory: configuration.dataDirectory, logger: configuration.logger, database: pool)
        committer = GroupCommitter(pool: pool)
        checkpointer = try BackgroundCheckpointer(databasePath: path)
        // A restore or copy may have loosened these: the token is a secret, the anchors and the lock
        // name what the audit log and the server hold.
        for name in ["admin.token", "audit.anchors", "fieldsyncd.lock"] {
            try FileSecurity.restrictIfLoosened(configuration.dataDirectory.appendingPathComponent(name))
        }
        policyStore = PolicyStore(policy: configuration.policy, schema: configuration.schema)
    }

    /// The store uses `RETURNING` (SQLite 3.35); GRDB links the system library, so say so clearly.
    static func checkSQLiteVersion(_ pool: DatabasePool) throws {
        let text = try pool.read { try String.fetchOne($0, sql: "SELECT sqlite_version()") } ?? "0"
        let parts = text.split(separator: ".").map { Int($0) ?? 0 }
        let (major, minor) = (parts.first ?? 0, parts.count > 1 ? parts[1] : 0)
        guard major > 3 || (major == 3 && minor >= 35) else {
            throw ServerError(.internalError, "fieldsyncd needs SQLite 3.35 or newer; this system has \(text). Install a newer libsqlite3 (Debian 12 and Ubuntu 22.04 have one).",
                              status: .internalServerError)
        }
    }

    /// On first start: creates the first admin (`admin`), writes its token to
    /// `DATA/admin.token` (0600) and returns it so it can be printed once.
    func bootstrapAdmin() throws -> String? {
        let token = Tokens.make(prefix: "fsa")
        let created = try pool.write { db -> Bool in
            let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM users WHERE role = 'admin'") ?? 0
            guard count == 0 else { return false }
            let now = Int64(self.now)
            try db.execute(sql: "INSERT INTO users (name, role, contact, created_at) VALUES ('admin', 'admin', '', ?)", arguments: [now])
            try db.execute(sql: "INSERT INTO admin_tokens (token_hash, user_id, created_at) VALUES (?, ?, ?)",
                           arguments: [Tokens.hash(token), db.lastInsertedRowID, now])
            try self.audit.append([AuditRecord(at: self.now, actor: "system", action: "bootstrapAdmin", detail: "first admin created")], db: db)
            return true
        }
        guard created else { return nil }
        try FileSecurity.writePrivate(Data((token + "\n").utf8), to: configuration.dataDirectory.appendingPathComponent("admin.token"))
        return token
    }

    /// Anchors the audit chain head.
    func anchorAudit() {
        do {
            try pool.read { db in try audit.anchor(db: db) }
        } catch {
            configuration.logger.error("could not anchor the audit chain head", metadata: ["error": "\(type(of: error))"])
        }
    }

    /// The store is reachable and answers a query.
    func healthy() async -> Bool {
        (try? await pool.read { db in try Int.fetchOne(db, sql: "SELECT 1") }) == 1
    }

    /// Bytes on disk of the database and its WAL.
    func storeSize() -> Int64 {
        let path = configuration.dataDirectory.appendingPathComponent("fieldsync.sqlite").path
        return ["", "-wal"].reduce(Int64(0)) { total, suffix in
            total + (((try? FileManager.default.attributesOfItem(atPath: path + suffix)[.size]) as? Int64) ?? 0)
        }
    }

    func close() {
        checkpointer.stop()
        anchorAudit()
        try? pool.close()
        directoryLock.release()
    }
}

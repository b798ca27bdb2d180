import Crypto
import Foundation
import GRDB
import SyncCore
import SyncServer

/// The device's identity as enrolled.
struct DeviceIdentityRecord: Codable, Sendable {
    var server: String
    var deviceID: String
    var replica: UInt32
    var user: String
    var role: String
    var name: String
    var enrolledAt: UInt64
    var maxBody: Int
}

/// The local store in the home directory (DESIGN §7): SQLite through GRDB,
/// with segment states, pending ops, rejected ops, the policy context and the
/// device token sealed with AES-GCM under a device key kept in a 0600 key
/// file. Rows are named by an HMAC of what they hold, so even which
/// households and purposes a device holds is unreadable without the key.
final class LocalStore: Sendable {
    let home: URL
    private let queue: DatabaseQueue
    private let key: SymmetricKey
    /// The key file is sealed under a passphrase (DeviceKeyFile).
    let keyIsWrapped: Bool
    private var keyURL: URL { home.appendingPathComponent(Self.keyFileName) }

    static let keyFileName = "device.key"
    static let databaseName = "store.sqlite"

    /// Opens (or creates) the store in `home`, creating the directory 0700.
    /// `passphrase` is asked only when the key file is wrapped; a new key is
    /// wrapped under `newPassphrase` when one is given.
    init(home: URL, create: Bool, passphrase: () throws -> String = LocalStore.noPassphrase, newPassphrase: String? = nil) throws {
        self.home = home
        let keyURL = home.appendingPathComponent(Self.keyFileName)
        let databaseURL = home.appendingPathComponent(Self.databaseName)
        if !create, !FileManager.default.fileExists(atPath: databaseURL.path) {
            throw CLIError.other("This home (\(home.path)) is not enrolled yet. Run 'fieldcli enroll --server URL --code CODE' first.")
        }
        try FileSecurity.makePrivateDirectory(home)
        DeviceKeyFile.scrubLeftovers(keyURL)
        if let existing = try? Data(contentsOf: keyURL) {
            try FileSecurity.restrictIfLoosened(keyURL)  // a restore or copy may have loosened it; the key opens the whole store
            key = try DeviceKeyFile.unwrap(try DeviceKeyFile.parse(existing, path: keyURL.path), passphrase: passphrase)
            keyIsWrapped = DeviceKeyFile.isWrapped(existing)
        } else {
            guard create || !FileManager.default.fileExists(atPath: databaseURL.path) else {
                throw CLIError.other("The device key \(keyURL.path) is missing, so the local store cannot be read. Enroll this device again.")
            }
            let fresh = SymmetricKey(size: .bits256)
            try FileSecurity.writePrivate(try DeviceKeyFile.encode(fresh, passphrase: newPassphrase), to: keyURL)
            key = fresh
            keyIsWrapped = newPassphrase != nil
        }
        var config = Configuration()
        config.journalMode = .wal
        config.busyMode = .timeout(30)
        // synchronous = FULL is set after GRDB's own WAL set-up (DurableCommits, below).
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA secure_delete = ON") }
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE sealed (name TEXT PRIMARY KEY, data BLOB NOT NULL);
                CREATE TABLE segments (name TEXT PRIMARY KEY, data BLOB NOT NULL);
                CREATE TABLE pending (position INTEGER PRIMARY KEY, data BLOB NOT NULL);
                CREATE TABLE schema (hash TEXT PRIMARY KEY, json BLOB NOT NULL);
                """)
        }
        do {
            queue = try DatabaseQueue(path: databaseURL.path, configuration: config)
            try DurableCommits.require(queue)
            try migrator.migrate(queue)
        } catch where DamagedStore.isDamage(error) {
            throw Self.damaged(databaseURL, error)
        }
        for suffix in ["", "-wal", "-shm"] {
            let path = databaseURL.path + suffix
            if FileManager.default.fileExists(atPath: path) {
                try? FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
            }
        }
    }

    static func damaged(_ databaseURL: URL, _ error: any Error) -> CLIError {
        CLIError.other("The local store \(databaseURL.path) is damaged (\((error as? DatabaseError)?.message ?? "unreadable")). "
                       + "Restore this home directory from a backup if there is one; otherwise enroll again with "
                       + "'fieldcli enroll --force --code CODE' (changes not yet synced are lost).")
    }

    /// The error for a wrapped key when no passphrase was given (no prompt).
    static let passphraseNotGiven = CLIError(.usage, "This device's key is protected by a passphrase. Set FIELDCLI_PASSPHRASE or run the command in a terminal.",
                                             code: "passphraseRequired")

    static func noPassphrase() throws -> String { throw passphraseNotGiven }

    /// Rewrites the key file: wrapped under `passphrase`, or plain when nil.
    /// The data key itself does not change, so no row is rewritten.
    func rewriteKey(passphrase: String?) throws {
        try DeviceKeyFile.replace(keyURL, with: try DeviceKeyFile.encode(key, passphrase: passphrase))
    }

    // MARK: Sealing

    private func seal(_ plaintext: [UInt8], name: String) throws -> Data {
        let box = try AES.GCM.seal(plaintext, using: key, authenticating: Data(name.utf8))
        guard let combined = box.combined else { throw CLIError.other("Could not encrypt local data.") }
        return combined
    }

    private func open(_ data: Data, name: String) throws -> [UInt8] {
        do {
            let box = try AES.GCM.SealedBox(combined: data)
            return Array(try AES.GCM.open(box, using: key, authenticating: Data(name.utf8)))
        } catch {
            throw CLIError.other("The local store cannot be decrypted with this device key (row \(name.prefix(8))). It may be damaged; enroll again with 'fieldcli enroll --force --code CODE' (changes not yet synced are lost).")
        }
    }

    /// A row name that reveals nothing: an HMAC of the segment key.
    private func rowName(_ segment: SegmentKey) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data("segment|\(segment.household)|\(segment.purpose)".utf8), using: key)
        return Data(mac).prefix(16).map { String(format: "%02x", $0) }.joined()
    }

    // MARK: Identity and token

    func saveIdentity(_ identity: DeviceIdentityRecord, token: String) throws {
        let identityBytes = Array(try JSONEncoder().encode(identity))
        try queue.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO sealed (name, data) VALUES ('identity', ?)", arguments: [try seal(identityBytes, name: "identity")])
            try db.execute(sql: "INSERT OR REPLACE INTO sealed (name, data) VALUES ('token', ?)", arguments: [try seal(Array(token.utf8), name: "token")])
        }
    }

    func identity() throws -> DeviceIdentityRecord? {
        guard let data = try queue.read({ db in try Data.fetchOne(db, sql: "SELECT data FROM sealed WHERE name = 'identity'") }) else { return nil }
        return try JSONDecoder().decode(DeviceIdentityRecord.self, from: Data(try open(data, name: "identity")))
    }

    func token() throws -> String? {
        guard let data = try queue.read({ db in try Data.fetchOne(db, sql: "SELECT data FROM sealed WHERE name = 'token'") }) else { return nil }
        return String(decoding: try open(data, name: "token"), as: UTF8.self)
    }

    // MARK: The replica

    /// What was loaded, so a save writes only what changed: each segment's
    /// canonical bytes (stored compressed when large, decision 43).
    struct Loaded: Sendable {
        var segmentBytes: [SegmentKey: [UInt8]]
    }

    func loadReplica() throws -> (ClientReplica, Loaded)? {
        try queue.read { db -> (ClientReplica, Loaded)? in
            guard let metaData = try Data.fetchOne(db, sql: "SELECT data FROM sealed WHERE name = 'replica'") else { return nil }
            let metadata = try JSONDecoder().decode(ClientReplica.Metadata.self, from: Data(try open(metaData, name: "replica")))
            guard let schemaRow = try Row.fetchOne(db, sql: "SELECT json FROM schema ORDER BY rowid DESC LIMIT 1") else {
                throw CLIError.other("The local store has no schema. Run 'fieldcli sync'.")
            }
            let schema = try Schema.load(json: schemaRow["json"])
            var states: [SegmentState] = []
            var bytes: [SegmentKey: [UInt8]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT name, data FROM segments") {
                let name: String = row["name"]
                let canonical = try SegmentState.canonicalBytes(stored: try open(row["data"], name: name))
                let state = try SegmentState(canonicalBytes: canonical)
                states.append(state)
                bytes[state.key] = canonical
            }
            var pending: [SyncOperation] = []
            for row in try Row.fetchAll(db, sql: "SELECT position, data FROM pending ORDER BY position") {
                let position: Int64 = row["position"]
                pending.append(try SyncOperation(encodedBytes: try open(row["data"], name: "pending.\(position)")))
            }
            return (ClientReplica(metadata: metadata, schema: schema, confirmed: states, pending: pending), Loaded(segmentBytes: bytes))
        }
    }

    /// The bytes the stored segments take, sealed (what the disk holds of them).
    func sealedSegmentBytes() throws -> Int {
        try queue.read { db in try Int.fetchOne(db, sql: "SELECT COALESCE(SUM(LENGTH(data)), 0) FROM segments") ?? 0 }
    }

    /// Saves the replica in one transaction: a crash leaves either the old or
    /// the new state, never a mix, and never loses a committed edit.
    @discardableResult
    func save(_ replica: ClientReplica, previous: Loaded?) throws -> Loaded {
        let metaBytes = Array(try JSONEncoder().encode(replica.metadata))
        let schemaJSON = MessageJSON.encode(replica.schema)
        var current: [SegmentKey: [UInt8]] = [:]
        for (key, state) in replica.confirmed { current[key] = state.canonicalBytes() }
        try queue.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO sealed (name, data) VALUES ('replica', ?)", arguments: [try seal(metaBytes, name: "replica")])
            if try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM schema WHERE hash = ?)", arguments: [replica.schema.contentHash]) != true {
                try db.execute(sql: "DELETE FROM schema")
                try db.execute(sql: "INSERT INTO schema (hash, json) VALUES (?, ?)", arguments: [replica.schema.contentHash, schemaJSON])
            }
            for (key, bytes) in current where previous?.segmentBytes[key] != bytes {
                let name = rowName(key)
                let stored = SegmentState.storedBytes(canonical: bytes)
                try db.execute(sql: "INSERT OR REPLACE INTO segments (name, data) VALUES (?, ?)", arguments: [name, try seal(stored, name: name)])
            }
            for key in (previous?.segmentBytes.keys).map(Array.init) ?? [] where current[key] == nil {
                try db.execute(sql: "DELETE FROM segments WHERE name = ?", arguments: [rowName(key)])
            }
            try db.execute(sql: "DELETE FROM pending")
            for (position, op) in replica.pending.enumerated() {
                try db.execute(sql: "INSERT INTO pending (position, data) VALUES (?, ?)",
                               arguments: [position, try seal(op.encodedBytes(), name: "pending.\(position)")])
            }
        }
        return Loaded(segmentBytes: current)
    }

    /// Deletes everything this device holds: a revoked device, or `enroll --force`.
    static func wipe(home: URL) throws {
        for name in [databaseName, databaseName + "-wal", databaseName + "-shm", keyFileName, keyFileName + ".old", keyFileName + ".tmp"] {
            try FileSecurity.overwriteAndRemove(home.appendingPathComponent(name))
        }
    }
}

extension LocalStore {
    func identityIfAny() -> DeviceIdentityRecord? { try? identity() }
}

import HTTPTypes
import Crypto
import Foundation
import GRDB
import Logging
public import SyncCore

/// One audit row as recorded (NEN 7513 style): who, on which device, did what
/// to which household and purpose, how many fields, when. IDs and purpose
/// codes only, never content.
public struct AuditRecord: Sendable, Codable, Hashable {
    public var seq: Int64 = 0
    public var at: UInt64
    public var actor: String
    public var device: String
    public var action: String
    public var household: String?
    public var purpose: String
    public var count: Int
    public var detail: String

    public init(at: UInt64, actor: String, device: String = "", action: String, household: HouseholdID? = nil,
                purpose: Purpose? = nil, count: Int = 0, detail: String = "") {
        self.at = at
        self.actor = actor
        self.device = device
        self.action = action
        self.household = household?.description
        self.purpose = purpose?.rawValue ?? ""
        self.count = count
        self.detail = detail
    }
}

/// The result of `admin audit --verify`.
public struct AuditVerification: Sendable, Codable {
    public var ok: Bool
    public var rows: Int64
    public var anchorsChecked: Int
    public var problem: String?
}

/// The append-only audit chain: a gapless sequence and an HMAC chain under a
/// key kept outside the database (`DATA/audit.key`, 0600). The chain head is
/// anchored to `DATA/audit.anchors` and the server log periodically and at
/// shutdown, so truncation after an anchored head is detectable.
final class AuditLog: Sendable {
    private let key: SymmetricKey
    /// HMAC with the key already absorbed; each row copies it (a value) instead
    /// of hashing the key pads again.
    private let keyedMAC: HMAC<SHA256>
    private let anchorsURL: URL
    private let logger: Logger

    /// Opens the chain's key and checks that it is the one that signs this
    /// store's log, by a fingerprint of the key kept in the database. A new
    /// key is made only for a store without a log: one made for an existing
    /// log (its key lost, or not restored with the database) could never
    /// verify it, and `--verify` would report every row as altered. The
    /// fingerprint, not the newest row's HMAC, is what is compared, so an
    /// altered row still lets the server start and `--verify` find it.
    init(dataDirectory: URL, logger: Logger, database: some DatabaseWriter) throws {
        let keyURL = dataDirectory.appendingPathComponent("audit.key")
        anchorsURL = dataDirectory.appendingPathComponent("audit.anchors")
        self.logger = logger
        let (stored, hasRows) = try database.read { db in
            (try Data.fetchOne(db, sql: "SELECT value FROM store_meta WHERE key = 'audit.key.fingerprint'"),
             try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM audit)") ?? false)
        }
        if !hasRows, let anchors = try? String(contentsOf: anchorsURL, encoding: .utf8),
           let head = anchors.split(separator: "\n").last?.split(separator: " ").first {
            // An anchored log and a database without one: the database was emptied or swapped,
            // and starting afresh would make a new admin beside the old data directory's devices.
            throw ServerError(.internalError, "audit.anchors records an audit log up to row \(head), but fieldsync.sqlite holds no audit rows: "
                              + "the database was emptied or replaced. Restore fieldsync.sqlite (with its -wal file) from backup, "
                              + "or move the whole data directory away to start a new server.", status: .internalServerError)
        }
        if let existing = try? Data(contentsOf: keyURL) {
            guard existing.count == 32 else {
                throw ServerError(.internalError, "audit.key in the data directory is damaged (expected 32 bytes). Restore it from backup.", status: .internalServerError)
            }
            try FileSecurity.restrictIfLoosened(keyURL)  // a restore or copy may have loosened it: the key signs the audit log
            key = SymmetricKey(data: existing)
            keyedMAC = HMAC<SHA256>(key: key)
            if let stored, stored != Self.fingerprint(keyedMAC) {
                throw ServerError(.internalError, "audit.key does not belong to this database: it is not the key that signs its audit log. "
                                  + "Restore audit.key from the same backup as fieldsync.sqlite.", status: .internalServerError)
            }
        } else {
            guard stored == nil, !hasRows else {
                throw ServerError(.internalError, "audit.key is missing from the data directory, but the database holds an audit log signed with it. "
                                  + "Restore audit.key from the backup of this data directory; a new key could never verify the existing log.",
                                  status: .internalServerError)
            }
            let fresh = SymmetricKey(size: .bits256)
            try FileSecurity.writePrivate(fresh.withUnsafeBytes { Data($0) }, to: keyURL)
            key = fresh
            keyedMAC = HMAC<SHA256>(key: fresh)
        }
        if stored == nil {
            // First start, or a store from before fingerprints. For the latter the key must first
            // prove itself on the log: adopting a foreign key here would make it the one on record.
            if hasRows {
                let newest = try database.read { db in try Row.fetchAll(db, sql: "SELECT * FROM audit ORDER BY seq DESC LIMIT 2") }
                guard let last = newest.first, verifies(last, previous: newest.count > 1 ? newest[1]["mac"] : Data(count: 32)) else {
                    // A different key, or an altered newest row: start (so --verify can say which), but record nothing.
                    logger.critical("audit.key does not verify the newest audit row: a different key, or an altered row; run 'fieldcli admin audit --verify'")
                    return
                }
            }
            let fingerprint = Self.fingerprint(keyedMAC)
            try database.write { db in
                try db.execute(sql: "INSERT INTO store_meta (key, value) VALUES ('audit.key.fingerprint', ?)", arguments: [fingerprint])
            }
        }
    }

    /// Whether a stored row's HMAC is the one this key gives it after `previous`.
    private func verifies(_ row: Row, previous: Data) -> Bool {
        Self.mac(Self.record(from: row), previous: previous, keyed: keyedMAC) == (row["mac"] as Data)
    }

    /// An HMAC of a fixed label: names the key without revealing it.
    private static func fingerprint(_ keyed: HMAC<SHA256>) -> Data {
        var hmac = keyed
        hmac.update(data: Array("fieldsync audit.key fingerprint v1".utf8))
        return Data(hmac.finalize())
    }

    /// Appends rows inside the caller's transaction (the same one as what they record).
    func append(_ records: [AuditRecord], db: Database) throws {
        guard !records.isEmpty else { return }
        let last = try Row.fetchOne(try db.cachedStatement(sql: "SELECT seq, mac FROM audit ORDER BY seq DESC LIMIT 1"))
        var seq: Int64 = last?["seq"] ?? 0
        var previous: Data = last?["mac"] ?? Data(count: 32)
        // Database values, bound as they are: an array of `any … & Sendable` would
        // go through GRDB's `[Any]` initializer, which casts every value at run time.
        var values: [(any DatabaseValueConvertible)?] = []
        // A sync writes a handful of rows: a few statements of several rows each cost far less than one per row.
        for (index, var record) in records.enumerated() {
            seq += 1
            record.seq = seq
            let mac = Self.mac(record, previous: previous, keyed: keyedMAC)
            values += [seq.databaseValue, Int64(record.at).databaseValue, record.actor.databaseValue, record.device.databaseValue,
                       record.action.databaseValue,
                       record.household.flatMap { HouseholdID($0)?.bytes }.map { Data($0) }.databaseValue,
                       record.purpose.databaseValue, record.count.databaseValue, record.detail.databaseValue, mac.databaseValue]
            previous = mac
            let rows = values.count / Self.columns
            if rows == Self.rowsPerInsert || index == records.count - 1 {
                try Self.insert(rows: rows, db: db).execute(arguments: StatementArguments(values))
                values.removeAll(keepingCapacity: true)
            }
        }
    }

    private static let columns = 10
    private static let rowsPerInsert = 8

    /// `INSERT INTO audit … VALUES (…), (…)` for `rows` rows, prepared once per row count.
    private static func insert(rows: Int, db: Database) throws -> Statement {
        let row = "(" + Array(repeating: "?", count: columns).joined(separator: ", ") + ")"
        return try db.cachedStatement(sql: "INSERT INTO audit (seq, at, actor, device, action, household, purpose, count, detail, mac) VALUES "
                                      + Array(repeating: row, count: rows).joined(separator: ", "))
    }

    static func mac(_ record: AuditRecord, previous: Data, keyed: HMAC<SHA256>) -> Data {
        // One buffer, one update: the same bytes as field-by-field updates, so old chains still verify.
        var message = [UInt8]()
        message.reserveCapacity(previous.count + 96 + record.detail.utf8.count)
        message.append(contentsOf: previous)
        for field in [String(record.seq), String(record.at), record.actor, record.device, record.action,
                      record.household ?? "", record.purpose, String(record.count), record.detail] {
            message.append(contentsOf: field.utf8)
            message.append(0x1F)
        }
        var hmac = keyed
        hmac.update(data: message)
        return Data(hmac.finalize())
    }

    /// Writes the chain head to the anchors file (fsynced) and the log.
    func anchor(db: Database) throws {
        guard let head = try Row.fetchOne(try db.cachedStatement(sql: "SELECT seq, mac FROM audit ORDER BY seq DESC LIMIT 1")) else { return }
        let seq: Int64 = head["seq"]
        let mac: Data = head["mac"]
        let line = "\(seq) \(mac.map { String(format: "%02x", $0) }.joined())\n"
        try FileSecurity.appendPrivate(Data(line.utf8), to: anchorsURL)
        logger.info("audit chain head anchored", metadata: ["audit.seq": "\(seq)"])
    }

    func readRows(db: Database, household: HouseholdID?, limit: Int) throws -> [AuditRecord] {
        var sql = "SELECT * FROM audit"
        var arguments: StatementArguments = []
        if let household {
            sql += " WHERE household = ?"
            arguments = [Data(household.bytes)]
        }
        sql += " ORDER BY seq DESC LIMIT ?"
        arguments += [limit]
        return try Row.fetchAll(db, sql: sql, arguments: arguments).map(Self.record(from:)).reversed()
    }

    static func record(from row: Row) -> AuditRecord {
        let householdBytes: Data? = row["household"]
        var record = AuditRecord(at: UInt64(row["at"] as Int64), actor: row["actor"], device: row["device"], action: row["action"],
                                 household: householdBytes.flatMap { HouseholdID(bytes: Array($0)) },
                                 purpose: nil, count: row["count"], detail: row["detail"])
        record.purpose = row["purpose"]
        record.seq = row["seq"]
        return record
    }

    /// Recomputes the whole chain and checks every anchor.
    func verify(db: Database) throws -> AuditVerification {
        var expected: Int64 = 1
        var previous = Data(count: 32)
        var macs: [Int64: Data] = [:]
        let cursor = try Row.fetchCursor(try db.cachedStatement(sql: "SELECT * FROM audit ORDER BY seq"))
        while let row = try cursor.next() {
            let record = Self.record(from: row)
            guard record.seq == expected else {
                return AuditVerification(ok: false, rows: expected - 1, anchorsChecked: 0,
                                         problem: "audit row \(expected) is missing (next row is \(record.seq))")
            }
            guard verifies(row, previous: previous) else {
                return AuditVerification(ok: false, rows: expected - 1, anchorsChecked: 0,
                                         problem: "audit row \(record.seq) was altered (its HMAC does not match the chain)")
            }
            let stored: Data = row["mac"]
            macs[record.seq] = stored
            previous = stored
            expected += 1
        }
        let rows = expected - 1
        var checked = 0
        if let text = try? String(contentsOf: anchorsURL, encoding: .utf8) {
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: " ")
                guard parts.count == 2, let seq = Int64(parts[0]) else { continue }
                guard let mac = macs[seq] else {
                    return AuditVerification(ok: false, rows: rows, anchorsChecked: checked,
                                             problem: "the log was truncated: anchored row \(seq) is gone (last row is \(rows))")
                }
                guard mac.map({ String(format: "%02x", $0) }).joined() == parts[1] else {
                    return AuditVerification(ok: false, rows: rows, anchorsChecked: checked,
                                             problem: "anchored row \(seq) does not match its anchor")
                }
                checked += 1
            }
        }
        return AuditVerification(ok: true, rows: rows, anchorsChecked: checked, problem: nil)
    }
}

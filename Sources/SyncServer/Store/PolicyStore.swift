import Foundation
import GRDB
import SyncCore

/// A user row.
struct UserRow: Sendable, Codable, Hashable {
    var id: Int64
    var name: String
    var role: String
    var contact: String
    var disabled: Bool

    init(row: Row) {
        id = row["id"]
        name = row["name"]
        role = row["role"]
        contact = row["contact"]
        disabled = row["disabled"]
    }

    static func find(_ db: Database, name: String) throws -> UserRow? {
        try Row.fetchOne(try db.cachedStatement(sql: "SELECT * FROM users WHERE name = ?"), arguments: [name]).map(UserRow.init(row:))
    }

    static func find(_ db: Database, id: Int64) throws -> UserRow? {
        try Row.fetchOne(try db.cachedStatement(sql: "SELECT * FROM users WHERE id = ?"), arguments: [id]).map(UserRow.init(row:))
    }
}

/// Builds the policy context the server evaluates and sends to devices
/// (DESIGN §4), and the involvement list (DESIGN §2).
struct PolicyStore: Sendable {
    let policy: PolicyFile
    let schema: Schema

    /// `version`: the policy version if the caller already read it in this transaction.
    func context(_ db: Database, user: UserRow, now: UInt64, version knownVersion: UInt64? = nil) throws -> PolicyContext {
        let assignments = try Row.fetchAll(try db.cachedStatement(sql: "SELECT household, until FROM assignments WHERE user_id = ?"), arguments: [user.id])
            .compactMap { row -> Assignment? in
                guard let id = HouseholdID(bytes: Array(row["household"] as Data)) else { return nil }
                let until: Int64? = row["until"]
                return Assignment(household: id, until: until.map { UInt64($0) })
            }
        let grants = try self.grants(db, userID: user.id)
        let households = Set(assignments.map(\.household))
        let blocks = try Row.fetchAll(try db.cachedStatement(sql: "SELECT household, purpose FROM consent_blocks")).compactMap { row -> ConsentBlock? in
            guard let id = HouseholdID(bytes: Array(row["household"] as Data)), households.contains(id) else { return nil }
            let purpose: String? = row["purpose"]
            return ConsentBlock(household: id, purpose: purpose.map(Purpose.init(_:)))
        }
        let version = try knownVersion ?? Self.version(db)
        var context = PolicyContext(user: user.name, role: user.role, rolePurposes: user.disabled ? [:] : policy.purposes(of: user.role),
                                    assignments: user.disabled ? [] : assignments, grants: user.disabled ? [] : grants,
                                    consentBlocks: blocks, version: version, serverTime: now,
                                    requiresDevicePassphrase: policy.requireDevicePassphrase)
        if !user.disabled {
            for assignment in assignments where assignment.until.map({ now < $0 }) ?? true {
                context.involvement[assignment.household] = try involvement(db, household: assignment.household, viewer: context, now: now)
            }
        }
        return context
    }

    func grants(_ db: Database, userID: Int64) throws -> [Grant] {
        try Row.fetchAll(try db.cachedStatement(sql: "SELECT purpose, access, household, until FROM grants WHERE user_id = ? ORDER BY id"), arguments: [userID])
            .map { row in
                let household: Data? = row["household"]
                let until: Int64? = row["until"]
                return Grant(purpose: Purpose(row["purpose"] as String), access: Access(rawValue: row["access"]) ?? .read,
                             household: household.flatMap { HouseholdID(bytes: Array($0)) }, until: until.map { UInt64($0) })
            }
    }

    /// Who else is involved in a household, as this viewer may see it: content
    /// free, and under a sensitive purpose the viewer lacks, only "a
    /// professional is involved" with a contact.
    func involvement(_ db: Database, household: HouseholdID, viewer: PolicyContext, now: UInt64) throws -> [Involvement] {
        let rows = try Row.fetchAll(try db.cachedStatement(sql: """
            SELECT users.id, users.name, users.role, users.contact FROM assignments JOIN users ON users.id = assignments.user_id
            WHERE assignments.household = ? AND users.disabled = 0 AND (assignments.until IS NULL OR assignments.until > ?)
            ORDER BY users.name
            """), arguments: [Data(household.bytes), Int64(now)])
        var result: [Involvement] = []
        for row in rows {
            let name: String = row["name"]
            guard name != viewer.user else { continue }
            let role: String = row["role"]
            var purposes = Set(policy.purposes(of: role).keys)
            for grant in try grants(db, userID: row["id"]) where (grant.household == nil || grant.household == household)
                && (grant.until.map { now < $0 } ?? true) {
                purposes.insert(grant.purpose)
            }
            let hidden = purposes.filter { purpose in
                policy.sensitivePurposes.contains(purpose)
                    && !PolicyEvaluator.mayRead(SegmentKey(household: household, purpose: purpose), context: viewer, now: now)
            }
            let restricted = !hidden.isEmpty
            result.append(Involvement(user: name, role: restricted ? "professional" : role,
                                      purposes: restricted ? [] : purposes.sorted(), contact: row["contact"], restricted: restricted))
        }
        return result
    }

    /// The policy version: every change to users, assignments, grants, consent or erasures bumps it.
    static func version(_ db: Database) throws -> UInt64 {
        UInt64(try Int64.fetchOne(try db.cachedStatement(sql: "SELECT value FROM meta WHERE key = 'policyVersion'")) ?? 0)
    }

    static func bumpVersion(_ db: Database) throws {
        try db.execute(sql: """
            INSERT INTO meta (key, value) VALUES ('policyVersion', '1')
            ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1
            """)
    }
}

import Synchronization
import HTTPTypes
import Foundation
import GRDB
public import SyncCore

/// An enrolled device as the server knows it.
struct DeviceRecord: Sendable {
    var id: String
    var user: UserRow
    var replica: ReplicaID
    var name: String
    var revoked: Bool
    var identity: DeviceIdentity { DeviceIdentity(replica: replica, user: user.name, deviceID: id) }
}

/// What `POST /v1/enroll` returns.
public struct EnrollResponse: Codable, Sendable {
    public var deviceID: String
    public var token: String
    public var replica: UInt32
    public var user: String
    public var role: String
    public var serverTime: UInt64
    public var maxBody: Int
    /// The user's policy context, so the device can check writes before its first sync.
    public var policy: PolicyContext
}

public struct EnrollRequest: Codable, Sendable {
    public var code: String
    public var name: String?
    public init(code: String, name: String?) {
        self.code = code
        self.name = name
    }
}

extension ServerStore {
    /// Finds the device behind a bearer token. A revoked device is reported
    /// as such so the route can answer 401 with a purge instruction.
    func authenticateDevice(token: String) async throws -> DeviceRecord {
        let hash = Tokens.hash(token)
        // Known devices are remembered (a revoke forgets them, and the push
        // transaction checks revocation again), saving a database hop per sync.
        if let cached = deviceCache.withLock({ $0[hash] }) { return cached }
        let found = try await pool.read { db -> DeviceRecord? in
            guard let row = try Row.fetchOne(try db.cachedStatement(sql: "SELECT * FROM devices WHERE token_hash = ?"), arguments: [hash]),
                  Tokens.equal(row["token_hash"], hash),
                  let user = try UserRow.find(db, id: row["user_id"]) else { return nil }
            let revoked: Int64? = row["revoked_at"]
            return DeviceRecord(id: row["id"], user: user, replica: ReplicaID(UInt32(row["replica"] as Int64)), name: row["name"],
                                revoked: revoked != nil)
        }
        guard let found else { throw ServerError.unauthorized() }
        if found.revoked { throw Self.revokedError() }
        deviceCache.withLock { $0[hash] = found }
        return found
    }

    static func revokedError() -> ServerError {
        ServerError(.revoked, "This device was revoked. Its local data must be wiped; enroll again with a new code.",
                    status: .unauthorized, extra: ["purge": "all"])
    }

    /// Finds the admin behind a bearer token.
    func authenticateAdmin(token: String) async throws -> UserRow {
        let hash = Tokens.hash(token)
        let user = try await pool.read { db -> UserRow? in
            guard let row = try Row.fetchOne(try db.cachedStatement(sql: "SELECT * FROM admin_tokens WHERE token_hash = ?"), arguments: [hash]),
                  Tokens.equal(row["token_hash"], hash) else { return nil }
            return try UserRow.find(db, id: row["user_id"])
        }
        guard let user, !user.disabled, configuration.policy.isAdminRole(user.role) else {
            throw ServerError(.unauthorized, "Missing or unknown admin token. Use the token printed at first start (DATA/admin.token) or one issued to you.",
                              status: .unauthorized)
        }
        return user
    }

    /// Trades a one-time enrollment code for a device token and a fresh replica ID.
    func enroll(_ request: EnrollRequest) async throws -> EnrollResponse {
        let code = request.code.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !code.isEmpty, code.utf8.count <= 200 else { throw ServerError.badRequest("Give the enrollment code an admin issued (fieldcli enroll --code CODE).") }
        let name = (request.name ?? "device").trimmingCharacters(in: .whitespacesAndNewlines)
        // Shown in admins' device lists and erasure reports: one line, or a crafted name could fake rows there.
        guard !name.isEmpty, name.utf8.count <= 100, name.isOneLine else {
            throw ServerError.badRequest("A device name is one line of 1 to 100 characters, e.g. laptop-noor (fieldcli enroll --name NAME).")
        }
        let hash = Tokens.hash(code)
        let token = Tokens.make(prefix: "fsd")
        let deviceID = UUID().uuidString.lowercased()
        let now = self.now
        let maxBody = configuration.maxBody
        let audit = self.audit
        let policyStore = self.policyStore
        return try await committer.write { db in
            guard let row = try Row.fetchOne(try db.cachedStatement(sql: "SELECT * FROM enrollment_codes WHERE code_hash = ?"), arguments: [hash]),
                  Tokens.equal(row["code_hash"], hash) else {
                throw ServerError(.unauthorized, "The enrollment code is unknown, expired or already used. Ask an admin for a new one (fieldcli admin enroll-code USER).",
                                  status: .unauthorized)
            }
            let used: Int64? = row["used_at"]
            let expires: Int64 = row["expires_at"]
            guard used == nil, UInt64(expires) > now else {
                throw ServerError(.unauthorized, "The enrollment code is unknown, expired or already used. Ask an admin for a new one (fieldcli admin enroll-code USER).",
                                  status: .unauthorized)
            }
            guard let user = try UserRow.find(db, id: row["user_id"]), !user.disabled else {
                throw ServerError(.forbidden, "The user of this code is disabled.", status: .forbidden)
            }
            let replica = max(2, (try Int64.fetchOne(try db.cachedStatement(sql: "SELECT MAX(replica) FROM devices")) ?? 1) + 1)
            try db.cachedStatement(sql: "UPDATE enrollment_codes SET used_at = ? WHERE code_hash = ?").execute(arguments: [Int64(now), hash])
            try db.cachedStatement(sql: """
                INSERT INTO devices (id, user_id, replica, token_hash, name, enrolled_at) VALUES (?, ?, ?, ?, ?, ?)
                """).execute(arguments: [deviceID, user.id, replica, Tokens.hash(token), name, Int64(now)])
            try audit.append([AuditRecord(at: now, actor: user.name, device: deviceID, action: "enroll", detail: "replica=\(replica)")], db: db)
            return EnrollResponse(deviceID: deviceID, token: token, replica: UInt32(replica), user: user.name, role: user.role,
                                  serverTime: now, maxBody: maxBody, policy: try policyStore.context(db, user: user, now: now))
        }
    }
}

import Synchronization
import Logging
import HTTPTypes
import Foundation
import GRDB
import SyncCore

/// The operations behind `/v1/admin/…`. Every one is audited under the
/// admin's name in the same transaction as what it changes.
extension ServerStore {
    typealias API = AdminAPI

    private func requireUser(_ db: Database, _ name: String) throws -> UserRow {
        guard let user = try UserRow.find(db, name: name) else {
            throw ServerError.notFound("There is no user \(name). List users with 'fieldcli admin user list'.")
        }
        return user
    }

    private static func validName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64 && name.unicodeScalars.allSatisfy {
            CharacterSet.alphanumerics.contains($0) || "-_.@".unicodeScalars.contains($0)
        }
    }

    // MARK: Users

    func addUser(_ request: API.AddUser, by admin: UserRow) async throws -> API.UserInfo {
        guard Self.validName(request.name) else {
            throw ServerError.badRequest("User names are 1–64 letters, digits, '-', '_', '.' or '@'.")
        }
        guard configuration.policy.roles[request.role] != nil else {
            let roles = configuration.policy.roles.keys.sorted().joined(separator: ", ")
            throw ServerError.badRequest("Unknown role \(request.role). Roles: \(roles).")
        }
        // The contact goes to every colleague's device in the involvement list: a line, not a document.
        if let contact = request.contact, contact.count > 200 || !contact.isOneLine {
            throw ServerError.badRequest("A contact is one line of at most 200 characters (a phone number or a team's address).")
        }
        let now = self.now
        let audit = self.audit
        return try await committer.write { db in
            guard try UserRow.find(db, name: request.name) == nil else {
                throw ServerError(.conflict, "User \(request.name) already exists.", status: .conflict)
            }
            try db.execute(sql: "INSERT INTO users (name, role, contact, created_at) VALUES (?, ?, ?, ?)",
                           arguments: [request.name, request.role, request.contact ?? "", Int64(now)])
            try PolicyStore.bumpVersion(db)
            try audit.append([AuditRecord(at: now, actor: admin.name, action: "userAdd", detail: "user=\(request.name) role=\(request.role)")], db: db)
            return API.UserInfo(name: request.name, role: request.role, contact: request.contact ?? "", disabled: false, devices: 0)
        }
    }

    func listUsers() async throws -> [API.UserInfo] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT users.*, (SELECT COUNT(*) FROM devices WHERE devices.user_id = users.id AND revoked_at IS NULL) AS device_count
                FROM users ORDER BY name
                """).map { row in
                API.UserInfo(name: row["name"], role: row["role"], contact: row["contact"], disabled: row["disabled"],
                             devices: row["device_count"])
            }
        }
    }

    func disableUser(_ name: String, by admin: UserRow) async throws -> API.Done {
        let now = self.now
        let audit = self.audit
        return try await committer.write { db in
            let user = try self.requireUser(db, name)
            guard user.id != admin.id else { throw ServerError(.conflict, "You cannot disable yourself.", status: .conflict) }
            try db.execute(sql: "UPDATE users SET disabled = 1 WHERE id = ?", arguments: [user.id])
            try PolicyStore.bumpVersion(db)
            try audit.append([AuditRecord(at: now, actor: admin.name, action: "userDisable", detail: "user=\(name)")], db: db)
            return API.Done("User \(name) is disabled; their devices purge all households at their next sync.")
        }
    }

    func enrollmentCode(for name: String, by admin: UserRow) async throws -> API.EnrollmentCode {
        let code = Tokens.make(prefix: "fse")
        let now = self.now
        let expires = now + UInt64(configuration.enrollmentCodeLifetime * 1000)
        let audit = self.audit
        return try await committer.write { db in
            let user = try self.requireUser(db, name)
            guard !user.disabled else { throw ServerError(.conflict, "User \(name) is disabled.", status: .conflict) }
            try db.execute(sql: "INSERT INTO enrollment_codes (code_hash, user_id, expires_at) VALUES (?, ?, ?)",
                           arguments: [Tokens.hash(code), user.id, Int64(expires)])
            try audit.append([AuditRecord(at: now, actor: admin.name, action: "enrollCode", detail: "user=\(name)")], db: db)
            return API.EnrollmentCode(user: name, code: code, expiresAt: expires)
        }
    }

    // MARK: Assignments and grants

    func assign(_ request: API.Assign, by admin: UserRow) async throws -> API.Done {
        try Self.checkUntil(request.until)
        let now = self.now
        let audit = self.audit
        return try await committer.write { db in
            let user = try self.requireUser(db, request.user)
            try Self.requireHousehold(db, request.household)
            try db.execute(sql: """
                INSERT INTO assignments (user_id, household, until, created_at) VALUES (?, ?, ?, ?)
                ON CONFLICT(user_id, household) DO UPDATE SET until = excluded.until
                """, arguments: [user.id, Data(request.household.bytes), request.until.map { Int64($0) }, Int64(now)])
            try PolicyStore.bumpVersion(db)
            try audit.append([AuditRecord(at: now, actor: admin.name, action: "assign", household: request.household,
                                          detail: "user=\(request.user)\(request.until.map { " until=\($0)" } ?? "")")], db: db)
            return API.Done("\(request.user) is assigned to \(request.household).")
        }
    }

    func unassign(_ request: API.Assign, by admin: UserRow) async throws -> API.Done {
        let now = self.now
        let audit = self.audit
        return try await committer.write { db in
            let user = try self.requireUser(db, request.user)
            try db.execute(sql: "DELETE FROM assignments WHERE user_id = ? AND household = ?", arguments: [user.id, Data(request.household.bytes)])
            guard db.changesCount > 0 else { throw ServerError.notFound("\(request.user) is not assigned to \(request.household).") }
            try PolicyStore.bumpVersion(db)
            try audit.append([AuditRecord(at: now, actor: admin.name, action: "unassign", household: request.household,
                                          detail: "user=\(request.user)")], db: db)
            return API.Done("\(request.user) is no longer assigned to \(request.household); their devices purge it at the next sync.")
        }
    }

    /// An end date is stored as a SQLite integer: a larger one is bad input (it would trap on conversion).
    private static func checkUntil(_ until: UInt64?) throws {
        guard (until ?? 0) <= UInt64(Int64.max) else { throw ServerError.badRequest("until is out of range (milliseconds since 1970).") }
    }

    /// A purpose an admin may give or block for devices: in the schema and not server-only.
    private static func requireDevicePurpose(_ purpose: Purpose, in schema: Schema) throws {
        guard !schema.isServerOnly(purpose) else {
            throw ServerError.badRequest("Unknown or server-only purpose \(purpose). Purposes: \(schema.devicePurposes.map(\.rawValue).joined(separator: ", ")).")
        }
    }

    static func householdExists(_ db: Database, _ household: HouseholdID) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM households WHERE id = ?)", arguments: [Data(household.bytes)]) == true
    }

    /// 404 for a household the server does not have ('fieldcli admin households' lists them).
    static func requireHousehold(_ db: Database, _ household: HouseholdID) throws {
        guard try householdExists(db, household) else {
            throw ServerError.notFound("There is no household \(household) on the server ('fieldcli admin households' lists them).")
        }
    }

    func grant(_ request: API.GrantRequest, by admin: UserRow) async throws -> API.GrantResult {
        try Self.checkUntil(request.until)
        try Self.requireDevicePurpose(request.purpose, in: schema)
        let now = self.now
        let audit = self.audit
        return try await committer.write { db in
            let user = try self.requireUser(db, request.user)
            let selfGrant = user.id == admin.id
            if let household = request.household { try Self.requireHousehold(db, household) }
            try db.execute(sql: "DELETE FROM grants WHERE user_id = ? AND purpose = ? AND household IS ?",
                           arguments: [user.id, request.purpose.rawValue, request.household.map { Data($0.bytes) }])
            try db.execute(sql: """
                INSERT INTO grants (user_id, purpose, access, household, until, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [user.id, request.purpose.rawValue, request.access.rawValue, request.household.map { Data($0.bytes) },
                                 request.until.map { Int64($0) }, admin.name, Int64(now)])
            try PolicyStore.bumpVersion(db)
            try audit.append([AuditRecord(at: now, actor: admin.name, action: "grant", household: request.household, purpose: request.purpose,
                                          detail: "user=\(request.user) access=\(request.access.rawValue)\(request.until.map { " until=\($0)" } ?? "")\(selfGrant ? " selfGrant=true" : "")")],
                             db: db)
            return API.GrantResult(user: request.user, purpose: request.purpose, access: request.access, household: request.household,
                                   until: request.until, selfGrant: selfGrant)
        }
    }

    func revokeGrant(_ request: API.RevokeGrant, by admin: UserRow) async throws -> API.Done {
        let now = self.now
        let audit = self.audit
        return try await committer.write { db in
            let user = try self.requireUser(db, request.user)
            try db.execute(sql: "DELETE FROM grants WHERE user_id = ? AND purpose = ? AND household IS ?",
                           arguments: [user.id, request.purpose.rawValue, request.household.map { Data($0.bytes) }])
            guard db.changesCount > 0 else {
                throw ServerError.notFound("\(request.user) has no such grant of \(request.purpose)\(request.household.map { " for \($0)" } ?? "").")
            }
            try PolicyStore.bumpVersion(db)
            try audit.append([AuditRecord(at: now, actor: admin.name, action: "revokeGrant", household: request.household,
                                          purpose: request.purpose, detail: "user=\(request.user)")], db: db)
            return API.Done("Grant revoked; \(request.user)'s devices purge what they may no longer read at the next sync.")
        }
    }

    func consentBlock(_ request: API.ConsentBlockRequest, add: Bool, by admin: UserRow) async throws -> API.Done {
        let now = self.now
        let audit = self.audit
        let schema = self.schema
        return try await committer.write { db in
            // A mistyped purpose (WM0) would be stored as given and block nothing while the admin is told it does.
            // Only on add: a block stored under a purpose since dropped from the schema must stay removable.
            if add, let purpose = request.purpose { try Self.requireDevicePurpose(purpose, in: schema) }
            try Self.requireHousehold(db, request.household)
            if add {
                try db.execute(sql: "INSERT INTO consent_blocks (household, purpose, created_by, created_at) VALUES (?, ?, ?, ?)",
                               arguments: [Data(request.household.bytes), request.purpose?.rawValue, admin.name, Int64(now)])
            } else {
                try db.execute(sql: "DELETE FROM consent_blocks WHERE household = ? AND purpose IS ?",
                               arguments: [Data(request.household.bytes), request.purpose?.rawValue])
                guard db.changesCount > 0 else {
                    throw ServerError.notFound("There is no consent block on \(request.household)\(request.purpose.map { " for \($0)" } ?? " for the whole household"); nothing was changed. Give the purpose exactly as it was blocked (or none for a whole-household block).")
                }
            }
            try PolicyStore.bumpVersion(db)
            try audit.append([AuditRecord(at: now, actor: admin.name, action: add ? "consentBlock" : "consentUnblock",
                                          household: request.household, purpose: request.purpose)], db: db)
            return API.Done(add ? "Consent withdrawal recorded; the purpose is purged from devices at their next sync." : "Consent block removed.")
        }
    }

    /// Who can read what in a household, and why.
    func access(household: HouseholdID, by admin: UserRow) async throws -> [API.AccessEntry] {
        let now = self.now
        let policyStore = self.policyStore
        let audit = self.audit
        let schema = self.schema
        return try await committer.write { db in
            try Self.requireHousehold(db, household)
            let rows = try Row.fetchAll(db, sql: """
                SELECT users.* FROM assignments JOIN users ON users.id = assignments.user_id WHERE assignments.household = ? ORDER BY users.name
                """, arguments: [Data(household.bytes)])
            var result: [API.AccessEntry] = []
            for row in rows {
                let user = UserRow(row: row)
                let context = try policyStore.context(db, user: user, now: now)
                var purposes: [API.PurposeAccess] = []
                for purpose in schema.devicePurposes {
                    let segment = SegmentKey(household: household, purpose: purpose)
                    guard case .allowed(let basis) = PolicyEvaluator.access(to: segment, context: context, now: now) else { continue }
                    let until = basis.source == "grant" ? context.grants.first { $0.purpose == purpose }?.until : nil
                    purposes.append(API.PurposeAccess(purpose: purpose, access: basis.access, basis: basis.source, until: until))
                }
                let assignment = context.assignments.first { $0.household == household }
                result.append(API.AccessEntry(user: user.name, role: user.role, purposes: purposes, assignedUntil: assignment?.until))
            }
            try audit.append([AuditRecord(at: now, actor: admin.name, action: "accessQuery", household: household)], db: db)
            return result
        }
    }

    // MARK: Devices

    func listDevices() async throws -> [API.DeviceInfo] {
        try await pool.read { db in
            let head = UInt64(try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'ops'") ?? 0)
            return try Row.fetchAll(db, sql: "SELECT devices.*, users.name AS user_name FROM devices JOIN users ON users.id = devices.user_id ORDER BY enrolled_at")
                .map { row in
                    let last: Int64? = row["last_sync_at"]
                    let revoked: Int64? = row["revoked_at"]
                    let cursor = UInt64(row["last_cursor"] as Int64)
                    return API.DeviceInfo(id: row["id"], name: row["name"], user: row["user_name"], replica: UInt32(row["replica"] as Int64),
                                          enrolledAt: UInt64(row["enrolled_at"] as Int64), lastSyncAt: last.map { UInt64($0) },
                                          lag: head > cursor ? head - cursor : 0, revoked: revoked != nil, clockSkew: row["clock_skew"])
                }
        }
    }

    func revokeDevice(_ id: String, by admin: UserRow) async throws -> API.Done {
        let now = self.now
        let audit = self.audit
        return try await committer.write { db in
            // A device ID names one device whatever the others are called: a device named after
            // another's ID must not stand in the way of revoking that one.
            var matches = try String.fetchAll(db, sql: "SELECT id FROM devices WHERE id = ? AND revoked_at IS NULL", arguments: [id])
            if matches.isEmpty {
                matches = try String.fetchAll(db, sql: "SELECT id FROM devices WHERE name = ? AND revoked_at IS NULL", arguments: [id])
            }
            guard !matches.isEmpty else { throw ServerError.notFound("No active device \(id). List devices with 'fieldcli admin device list'.") }
            guard matches.count == 1 else {
                throw ServerError(.conflict, "\(matches.count) active devices are named \(id); revoke by device ID ('fieldcli admin device list').", status: .conflict)
            }
            try db.execute(sql: "UPDATE devices SET revoked_at = ? WHERE id = ?", arguments: [Int64(now), matches[0]])
            let revokedID = matches[0]
            self.deviceCache.withLock { cache in cache = cache.filter { $0.value.id != revokedID } }
            try audit.append([AuditRecord(at: now, actor: admin.name, device: revokedID, action: "deviceRevoke")], db: db)
            return API.Done("Device \(id == revokedID ? id : "\(id) (\(revokedID))") is revoked: its token is refused and it wipes its local store if it comes back.")
        }
    }

    // MARK: Households

    /// Writes one op as the server's own replica (admin resolves, households
    /// created on the server), through the same merge path as device ops.
    /// `context`: the carried context to use instead of everything the server
    /// holds (a requeued op keeps what its author had seen, so later concurrent
    /// values stay visible as a conflict instead of being overwritten).
    private func serverWrite(_ db: Database, segment: SegmentKey, author: String, payload: OperationPayload, now: UInt64,
                             context carried: VersionVector? = nil) throws -> SyncOperation {
        let epoch = try SQLiteSyncBackend.currentEpoch(db, segment) ?? 0
        var state = try SQLiteSyncBackend.load(db, segment) ?? ServerSegment(key: segment, epoch: epoch)
        let stamp = serverClock.withLock { $0.tick(wallMilliseconds: now) }
        var context = carried ?? state.state.context.vector
        let counter = state.state.context.vector[.server] + 1
        context.raise(.server, to: counter - 1)
        let op = SyncOperation(dot: Dot(replica: .server, counter: counter), segment: segment, epoch: state.state.epoch, stamp: stamp,
                               author: author, context: context, payload: payload)
        if let reason = OperationValidator(schema: schema).validateSchema(op) {
            throw ServerError.badRequest("The server refused the write: \(reason). \(reason.advice)")
        }
        try db.execute(sql: """
            INSERT INTO ops (household, purpose, epoch, replica, counter, fingerprint, rejection, at) VALUES (?, ?, ?, ?, ?, ?, NULL, ?)
            """, arguments: [Data(segment.household.bytes), segment.purpose.rawValue, Int64(op.epoch), Int64(ReplicaID.server.rawValue),
                             Int64(counter), Data(PushProcessor.fingerprint(op).bytes), Int64(now)])
        let seq = UInt64(db.lastInsertedRowID)
        var changed = Set<ElementKey>()
        if let element = state.accept(op, seq: seq) { changed.insert(element) }
        try SQLiteSyncBackend.save(db, state, changed: changed, schema: schema, now: now)
        return op
    }

    func createHousehold(label: String?, by admin: UserRow) async throws -> API.HouseholdInfo {
        var generator = SystemRandomNumberGenerator()
        let id = HouseholdID.random(using: &generator)
        let now = self.now
        let audit = self.audit
        try await committer.write { db in
            try db.execute(sql: "INSERT INTO households (id, created_at, created_by) VALUES (?, ?, ?)",
                           arguments: [Data(id.bytes), Int64(now), admin.name])
            let segment = SegmentKey(household: id, purpose: .regie)
            _ = try self.serverWrite(db, segment: segment, author: admin.name, payload: .createHousehold, now: now)
            if let label, !label.isEmpty {
                _ = try self.serverWrite(db, segment: segment, author: admin.name, payload: .set(field: "label", value: label, resolves: []), now: now)
            }
            try audit.append([AuditRecord(at: now, actor: admin.name, action: "householdCreate", household: id, purpose: .regie)], db: db)
        }
        return API.HouseholdInfo(id: id, createdAt: now, createdBy: admin.name, segments: [API.SegmentInfo(purpose: .regie, epoch: 0, elements: label == nil ? 1 : 2)],
                                 assigned: [])
    }

    func listHouseholds() async throws -> [API.HouseholdInfo] {
        try await pool.read { db in
            let duplicates = try Self.likelyDuplicates(db)
            return try Row.fetchAll(db, sql: "SELECT * FROM households ORDER BY created_at").compactMap { row in
                guard let id = HouseholdID(bytes: Array(row["id"] as Data)) else { return nil }
                let segments = try Row.fetchAll(db, sql: """
                    SELECT purpose, epoch, (SELECT COUNT(*) FROM elements WHERE segment_id = segments.id) AS n FROM segments
                    WHERE household = ? ORDER BY purpose
                    """, arguments: [Data(id.bytes)]).map {
                    API.SegmentInfo(purpose: Purpose($0["purpose"] as String), epoch: UInt32($0["epoch"] as Int64), elements: $0["n"])
                }
                let assigned = try String.fetchAll(db, sql: """
                    SELECT users.name FROM assignments JOIN users ON users.id = assignments.user_id WHERE household = ? ORDER BY users.name
                    """, arguments: [Data(id.bytes)])
                return API.HouseholdInfo(id: id, createdAt: UInt64(row["created_at"] as Int64), createdBy: row["created_by"],
                                         segments: segments, assigned: assigned, likelyDuplicates: duplicates[id] ?? [])
            }
        }
    }

    /// Households whose REGIE `address` or `label` is the same (ignoring case and spaces).
    static func likelyDuplicates(_ db: Database) throws -> [HouseholdID: [HouseholdID]] {
        var byKey: [String: [HouseholdID]] = [:]
        let keys = ["address", "label"].map { Data(ElementKey.field($0).storageKey) }
        let rows = try Row.fetchAll(db, sql: """
            SELECT segments.household, elements.key, elements.data FROM elements JOIN segments ON segments.id = elements.segment_id
            WHERE segments.purpose = 'REGIE' AND elements.key IN (?, ?)
            """, arguments: [keys[0], keys[1]])
        for row in rows {
            guard let id = HouseholdID(bytes: Array(row["household"] as Data)),
                  case .field(let name, let register) = try SegmentElement.decodeRow(Array(row["data"] as Data)) else { continue }
            for value in register.values {
                let normalized = value.value.lowercased().filter { !$0.isWhitespace && $0 != "." && $0 != "," }
                guard normalized.count >= 4 else { continue }
                byKey["\(name)|\(normalized)", default: []].append(id)
            }
        }
        var result: [HouseholdID: Set<HouseholdID>] = [:]
        for group in byKey.values where Set(group).count > 1 {
            for id in group { result[id, default: []].formUnion(group.filter { $0 != id }) }
        }
        return result.mapValues { $0.sorted() }
    }

    // MARK: Conflicts

    /// A break-glass reason as the audit log keeps it: why, in one line. The log is
    /// never erased (its rows are chained), so it must not become a place for
    /// client details: short, and the help asks for a case number instead.
    static func breakGlassReason(_ text: String) throws -> String {
        let reason = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard reason.count >= 8, reason.count <= 200, reason.isOneLine else {
            throw ServerError.badRequest("A break-glass reason is one line of 8 to 200 characters saying why, e.g. a case or ticket number; "
                                         + "no client details: it is kept in the audit log, which is never erased.")
        }
        return reason
    }

    /// The conflict queue, with value IDs. Values only where the admin holds a
    /// read grant, or with an audited break-glass reason.
    func conflicts(household: HouseholdID?, breakGlass: String?, by admin: UserRow) async throws -> [API.ConflictEntry] {
        let now = self.now
        let policyStore = self.policyStore
        let audit = self.audit
        let schema = self.schema
        let reason = try breakGlass.map(Self.breakGlassReason)
        return try await committer.write { db in
            var sql = "SELECT conflicts.*, segments.household, segments.purpose FROM conflicts JOIN segments ON segments.id = conflicts.segment_id"
            var arguments: StatementArguments = []
            if let household {
                sql += " WHERE segments.household = ?"
                arguments = [Data(household.bytes)]
            }
            sql += " ORDER BY segments.household, segments.purpose, conflicts.name"
            let adminContext = try policyStore.context(db, user: admin, now: now)
            var result: [API.ConflictEntry] = []
            var records: [AuditRecord] = []
            var loaded: [SegmentKey: ServerSegment] = [:]
            for row in try Row.fetchAll(db, sql: sql, arguments: arguments) {
                guard let id = HouseholdID(bytes: Array(row["household"] as Data)) else { continue }
                let segment = SegmentKey(household: id, purpose: Purpose(row["purpose"] as String))
                let item: String = row["item"]
                var entry = API.ConflictEntry(household: id, purpose: segment.purpose, name: row["name"], item: item.isEmpty ? nil : item,
                                              kind: row["kind"], valueIDs: (row["value_ids"] as String).split(separator: ",").map(String.init),
                                              values: nil)
                let granted = PolicyEvaluator.mayRead(segment, context: adminContext, now: now)
                if granted || reason != nil {
                    if loaded[segment] == nil { loaded[segment] = try SQLiteSyncBackend.load(db, segment) }
                    let conflicts = loaded[segment]?.state.conflicts(schema: schema) ?? []
                    entry.values = conflicts.first { $0.name == entry.name && ($0.item?.description ?? "") == item }?.values
                    records.append(AuditRecord(at: now, actor: admin.name, action: granted ? "disclose" : "breakGlass", household: id,
                                               purpose: segment.purpose, count: entry.values?.count ?? 0,
                                               detail: granted ? "conflict values" : "reason: \(reason!)"))
                }
                result.append(entry)
            }
            records.append(AuditRecord(at: now, actor: admin.name, action: "conflictsList", household: household, count: result.count))
            try audit.append(records, db: db)
            return result
        }
    }

    /// Resolves a conflicting field on the server: an ordinary write, by the
    /// server's replica, that supersedes every current value.
    func resolve(_ request: API.Resolve, by admin: UserRow) async throws -> API.ResolveResult {
        guard let field = schema.field(request.field) else { throw ServerError.badRequest("There is no field \(request.field) in the schema.") }
        guard (request.pick == nil) != (request.value == nil) else { throw ServerError.badRequest("Give exactly one of --pick VALUE_ID or --value V.") }
        let breakGlass = try request.breakGlass.map(Self.breakGlassReason)  // checked before anything is written
        let segment = SegmentKey(household: request.household, purpose: field.purpose)
        let now = self.now
        let audit = self.audit
        let policyStore = self.policyStore
        return try await committer.write { db in
            guard let loaded = try SQLiteSyncBackend.load(db, segment), let register = loaded.state.fields[request.field],
                  !register.values.isEmpty else {
                throw ServerError.notFound("Field \(request.field) of household \(request.household) has no value on the server.")
            }
            let value: String
            if let pick = request.pick {
                guard let dot = Dot(pick), let chosen = register.values.first(where: { $0.dot == dot }) else {
                    throw ServerError.notFound("Value \(pick) is not a current value of \(request.field). Current: \(register.values.map(\.dot.description).joined(separator: ", ")).")
                }
                value = chosen.value
            } else {
                let adminContext = try policyStore.context(db, user: admin, now: now)
                guard PolicyEvaluator.mayRead(segment, context: adminContext, now: now) || request.breakGlass != nil else {
                    throw ServerError(.forbidden, "Writing a new value needs a grant of \(field.purpose) or --break-glass REASON.", status: .forbidden)
                }
                value = request.value!
            }
            let superseded = register.values.map(\.dot)
            let op = try self.serverWrite(db, segment: segment, author: admin.name,
                                          payload: .set(field: request.field, value: value, resolves: superseded), now: now)
            var records = [AuditRecord(at: now, actor: admin.name, action: "resolve", household: request.household, purpose: field.purpose,
                                       count: superseded.count, detail: "field=\(request.field) value=\(op.dot)")]
            if let reason = breakGlass {
                records.append(AuditRecord(at: now, actor: admin.name, action: "breakGlass", household: request.household, purpose: field.purpose,
                                           detail: "reason: \(reason)"))
            }
            try audit.append(records, db: db)
            return API.ResolveResult(household: request.household, field: request.field, valueID: op.dot.description,
                                     superseded: superseded.map(\.description))
        }
    }

    // MARK: Quarantine

    func listRejects() async throws -> [API.RejectEntry] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM quarantine ORDER BY seq").compactMap { row in
                guard let id = HouseholdID(bytes: Array(row["household"] as Data)) else { return nil }
                let op = try? SyncOperation(encodedBytes: Array(row["op"] as Data))
                return API.RejectEntry(id: row["seq"], household: id, purpose: Purpose(row["purpose"] as String), user: row["user"],
                                       device: row["device_id"], reason: row["reason"], kind: op?.payload.kindName ?? "discarded",
                                       name: op?.payload.targetName, at: UInt64(row["at"] as Int64), status: row["status"])
            }
        }
    }

    /// The refusals a requeue may lift: those a grant, an assignment or a lifted consent block undoes.
    static let requeueable: Set<RefusalReason> = [.notAssigned, .purposeNotGranted, .readOnly, .consentWithdrawn]

    /// Re-checks a quarantined op under its author's current rights; if it
    /// now passes, its content lands as a new server-made op.
    func requeueReject(_ id: Int64, by admin: UserRow) async throws -> API.RejectAction {
        let now = self.now
        let audit = self.audit
        let policyStore = self.policyStore
        let schema = self.schema
        return try await committer.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM quarantine WHERE seq = ?", arguments: [id]) else {
                throw ServerError.notFound("No quarantined op \(id). List them with 'fieldcli admin rejects'.")
            }
            guard (row["status"] as String) == "held" else {
                throw ServerError(.conflict, "Quarantined op \(id) is already \(row["status"] as String).", status: .conflict)
            }
            let op = try SyncOperation(encodedBytes: Array(row["op"] as Data))
            // Only a refusal that granting, assigning or a lifted consent block can undo is the
            // admin's to undo: an op refused as malformed or dangling must never land.
            let reason = RefusalReason(row["reason"] as String)
            guard Self.requeueable.contains(reason), op.payload != .createHousehold else {
                throw ServerError(.conflict, "Quarantined op \(id) was refused as \(reason), which a requeue cannot lift; only \(Self.requeueable.map(\.rawValue).sorted().joined(separator: ", ")) can. Discard it (--discard \(id)) and ask its author to write it again if it is needed.",
                                  status: .conflict)
            }
            guard let author = try UserRow.find(db, name: row["user"]) else { throw ServerError.notFound("The op's author no longer exists.") }
            let policy = try policyStore.context(db, user: author, now: now)
            let segmentState = try SQLiteSyncBackend.load(db, op.segment)
            let epoch = try SQLiteSyncBackend.currentEpoch(db, op.segment) ?? 0
            if op.epoch < epoch { throw ServerError(.conflict, "The op's segment was erased since; it cannot be requeued.", status: .conflict) }
            if let reason = OperationValidator(schema: schema).validateSchema(op) {
                throw ServerError(.conflict, "Still refused: \(reason). \(reason.advice)", status: .conflict)
            }
            if case .refused(let reason) = PolicyEvaluator.check(.write, segment: op.segment, context: policy, now: now) {
                throw ServerError(.conflict, "Still refused for \(author.name): \(reason). Add the grant first, then requeue.", status: .conflict)
            }
            if let reason = OperationValidator(schema: schema).referenceRefusal(op, householdExists: try Self.householdExists(db, op.segment.household),
                                                                                state: segmentState?.state) {
                throw ServerError(.conflict, "Still refused: \(reason). \(reason.advice)", status: .conflict)
            }
            let landed = try self.serverWrite(db, segment: op.segment, author: author.name, payload: op.payload, now: now,
                                              context: op.context)
            try db.execute(sql: "UPDATE quarantine SET status = 'requeued' WHERE seq = ?", arguments: [id])
            try audit.append([AuditRecord(at: now, actor: admin.name, action: "requeue", household: op.segment.household,
                                          purpose: op.segment.purpose, count: 1, detail: "quarantine=\(id) op=\(op.dot) landed=\(landed.dot)")], db: db)
            return API.RejectAction(id: id, status: "requeued", message: "Op \(id) was accepted now and lands as \(landed.dot).")
        }
    }

    func discardReject(_ id: Int64, by admin: UserRow) async throws -> API.RejectAction {
        let now = self.now
        let audit = self.audit
        return try await committer.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT household, purpose FROM quarantine WHERE seq = ? AND status = 'held'", arguments: [id]) else {
                throw ServerError.notFound("No held quarantined op \(id).")
            }
            // The content goes; the row stays as a record that something was discarded.
            try db.execute(sql: "UPDATE quarantine SET status = 'discarded', op = x'' WHERE seq = ?", arguments: [id])
            let household = HouseholdID(bytes: Array(row["household"] as Data))
            try audit.append([AuditRecord(at: now, actor: admin.name, action: "discard", household: household,
                                          purpose: Purpose(row["purpose"] as String), detail: "quarantine=\(id)")], db: db)
            return API.RejectAction(id: id, status: "discarded", message: "Op \(id) was discarded.")
        }
    }

    // MARK: Audit

    func auditRows(household: HouseholdID?, limit: Int, by admin: UserRow) async throws -> [AuditRecord] {
        let now = self.now
        let audit = self.audit
        return try await committer.write { db in
            let rows = try audit.readRows(db: db, household: household, limit: limit)
            try audit.append([AuditRecord(at: now, actor: admin.name, action: "auditQuery", household: household, count: rows.count)], db: db)
            return rows
        }
    }

    func verifyAudit() async throws -> AuditVerification {
        let audit = self.audit
        return try await pool.read { db in try audit.verify(db: db) }
    }

    // MARK: Erasure

    /// AVG art. 17 erasure (DESIGN §6): deletes the segment's ops, state rows,
    /// conflicts and quarantined ops, raises its epoch, checkpoints the WAL,
    /// and lists the devices that still hold it.
    func erase(_ request: API.Erase, by admin: UserRow) async throws -> API.EraseResult {
        let now = self.now
        let audit = self.audit
        let household = request.household
        let (erased, quarantined) = try await committer.write { db -> ([API.ErasedSegment], Int) in
            // Quarantined ops are personal data too, and some have no segment to be erased with: ops
            // of a purpose refused before any of its ops landed, or of a household the server never
            // had. They go whatever else there is.
            let quarantined = try Self.eraseQuarantine(household: household, purpose: request.purpose, by: admin, at: now, audit: audit, db: db)
            guard try Self.householdExists(db, household) else {
                if quarantined > 0 { return ([], quarantined) }
                throw ServerError.notFound("There is no household \(household) on the server.")
            }
            var purposes = try String.fetchAll(db, sql: "SELECT purpose FROM segments WHERE household = ?", arguments: [Data(household.bytes)])
                .map(Purpose.init(_:))
            if let only = request.purpose { purposes = purposes.filter { $0 == only } }
            guard !purposes.isEmpty else { return ([], quarantined) }
            var result: [API.ErasedSegment] = []
            var records: [AuditRecord] = []
            for purpose in purposes.sorted() {
                let key = [Data(household.bytes), purpose.rawValue] as StatementArguments
                guard let row = try Row.fetchOne(db, sql: "SELECT id, epoch FROM segments WHERE household = ? AND purpose = ?", arguments: key) else { continue }
                let segmentID: Int64 = row["id"]
                let oldEpoch = UInt32(row["epoch"] as Int64)
                try db.execute(sql: "DELETE FROM elements WHERE segment_id = ?", arguments: [segmentID])
                try db.execute(sql: "DELETE FROM conflicts WHERE segment_id = ?", arguments: [segmentID])
                try db.execute(sql: "DELETE FROM segments WHERE id = ?", arguments: [segmentID])
                try db.execute(sql: "DELETE FROM ops WHERE household = ? AND purpose = ?", arguments: key)
                try db.execute(sql: """
                    INSERT INTO epochs (household, purpose, epoch) VALUES (?, ?, ?)
                    ON CONFLICT(household, purpose) DO UPDATE SET epoch = excluded.epoch
                    """, arguments: [Data(household.bytes), purpose.rawValue, Int64(oldEpoch + 1)])
                try db.execute(sql: "INSERT INTO erasures (household, purpose, old_epoch, at, by) VALUES (?, ?, ?, ?, ?)",
                               arguments: [Data(household.bytes), purpose.rawValue, Int64(oldEpoch), Int64(now), admin.name])
                records.append(AuditRecord(at: now, actor: admin.name, action: "erase", household: household, purpose: purpose,
                                           detail: "epoch \(oldEpoch)->\(oldEpoch + 1)"))
                result.append(API.ErasedSegment(purpose: purpose, oldEpoch: oldEpoch, newEpoch: oldEpoch + 1))
            }
            try PolicyStore.bumpVersion(db)
            try audit.append(records, db: db)
            return (result, quarantined)
        }
        if erased.isEmpty {
            // Nothing left to erase: answer as the follow-up does (`--status`), if it was erased before.
            let earlier = try await erasedBefore(household: household, purpose: request.purpose)
            guard !earlier.isEmpty || quarantined > 0 else {
                throw ServerError.notFound("Household \(household) has no \(request.purpose.map { "\($0) " } ?? "")data on the server.")
            }
            if quarantined > 0 { try await checkpointTruncate() }
            return API.EraseResult(household: household, erased: [], erasedBefore: earlier,
                                   devicesStillHolding: try await devicesHolding(household: household, erased: earlier),
                                   quarantinedErased: quarantined)
        }
        // Deleted pages are zeroed (secure_delete); the WAL is emptied too.
        try await checkpointTruncate()
        return API.EraseResult(household: household, erased: erased, erasedBefore: [],
                               devicesStillHolding: try await devicesHolding(household: household, erased: erased),
                               quarantinedErased: quarantined)
    }

    /// Deletes a household's quarantined ops (of one purpose, or all), audited with their count.
    private static func eraseQuarantine(household: HouseholdID, purpose: Purpose?, by admin: UserRow, at now: UInt64,
                                        audit: AuditLog, db: Database) throws -> Int {
        if let purpose {
            try db.execute(sql: "DELETE FROM quarantine WHERE household = ? AND purpose = ?", arguments: [Data(household.bytes), purpose.rawValue])
        } else {
            try db.execute(sql: "DELETE FROM quarantine WHERE household = ?", arguments: [Data(household.bytes)])
        }
        let count = db.changesCount
        if count > 0 {
            try audit.append([AuditRecord(at: now, actor: admin.name, action: "eraseQuarantine", household: household, purpose: purpose,
                                          count: count)], db: db)
        }
        return count
    }

    /// The follow-up of an erasure, read-only: the last erasure of each purpose
    /// (or of one) and the devices that still hold those epochs. Audited, as
    /// every admin call is; 404 when nothing of it was ever erased.
    func erasureStatus(household: HouseholdID, purpose: Purpose?, by admin: UserRow) async throws -> API.EraseResult {
        let earlier = try await erasedBefore(household: household, purpose: purpose)
        guard !earlier.isEmpty else {
            throw ServerError.notFound("Nothing of household \(household)\(purpose.map { " (\($0))" } ?? "") was erased on this server.")
        }
        let now = self.now
        let audit = self.audit
        try await committer.write { db in
            try audit.append([AuditRecord(at: now, actor: admin.name, action: "erasureStatus", household: household, purpose: purpose)], db: db)
        }
        return API.EraseResult(household: household, erased: [], erasedBefore: earlier,
                               devicesStillHolding: try await devicesHolding(household: household, erased: earlier))
    }

    /// The last erasure of each of a household's purposes (or of one), from the erasure log.
    private func erasedBefore(household: HouseholdID, purpose: Purpose?) async throws -> [API.ErasedSegment] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT purpose, MAX(old_epoch) AS old_epoch FROM erasures WHERE household = ? GROUP BY purpose ORDER BY purpose",
                             arguments: [Data(household.bytes)])
                .map { row in
                    let oldEpoch = UInt32(row["old_epoch"] as Int64)
                    return API.ErasedSegment(purpose: Purpose(row["purpose"] as String), oldEpoch: oldEpoch, newEpoch: oldEpoch + 1)
                }
                .filter { purpose == nil || $0.purpose == purpose }
        }
    }

    /// `PRAGMA wal_checkpoint(TRUNCATE)` until it is not busy (readers can hold it up briefly).
    func checkpointTruncate() async throws {
        for attempt in 0..<50 {
            let busy = try await pool.writeWithoutTransaction { db in
                try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)").map { ($0[0] as Int?) ?? 0 } ?? 0
            }
            if busy == 0 { return }
            try await Task.sleep(for: .milliseconds(20 * (attempt + 1)))
        }
        throw ServerError(.unavailable, "The data was erased, but the WAL could not be truncated because readers kept it busy. Run the erase again shortly.",
                          status: .serviceUnavailable)
    }

    /// Issues an admin token for a user with an admin role (named admins, DESIGN §6).
    func adminToken(for name: String, by admin: UserRow) async throws -> [String: String] {
        let token = Tokens.make(prefix: "fsa")
        let now = self.now
        let audit = self.audit
        let policy = configuration.policy
        return try await committer.write { db in
            let user = try self.requireUser(db, name)
            guard policy.isAdminRole(user.role), !user.disabled else {
                throw ServerError(.conflict, "\(name) does not have an admin role; only admins get admin tokens.", status: .conflict)
            }
            try db.execute(sql: "INSERT INTO admin_tokens (token_hash, user_id, created_at) VALUES (?, ?, ?)",
                           arguments: [Tokens.hash(token), user.id, Int64(now)])
            try audit.append([AuditRecord(at: now, actor: admin.name, action: "adminToken", detail: "user=\(name)")], db: db)
            return ["user": name, "token": token]
        }
    }

    /// Revokes every admin token of a user (a token that leaked or left with a laptop); issue a new
    /// one after. Not one's own: that would leave the caller locked out mid-task.
    func revokeAdminTokens(of name: String, by admin: UserRow) async throws -> API.Done {
        let now = self.now
        let audit = self.audit
        return try await committer.write { db in
            let user = try self.requireUser(db, name)
            guard user.id != admin.id else {
                throw ServerError(.conflict, "You cannot revoke your own admin tokens; ask another admin (fieldcli admin admin-token \(name) --revoke).",
                                  status: .conflict)
            }
            try db.execute(sql: "DELETE FROM admin_tokens WHERE user_id = ?", arguments: [user.id])
            let count = db.changesCount
            try audit.append([AuditRecord(at: now, actor: admin.name, action: "adminTokenRevoke", count: count, detail: "user=\(name)")], db: db)
            return API.Done("Revoked \(count) admin token(s) of \(name). Issue a new one with: fieldcli admin admin-token \(name)")
        }
    }

    /// Records a read-only admin action (lists, verify) in the audit log.
    func auditAdminRead(_ action: String, by admin: UserRow) async throws {
        let now = self.now
        let audit = self.audit
        try await committer.write { db in
            try audit.append([AuditRecord(at: now, actor: admin.name, action: action)], db: db)
        }
    }

    /// Devices whose last reported held list still contains these erased segments (at their old epoch or before).
    func devicesHolding(household: HouseholdID, erased: [API.ErasedSegment]) async throws -> [API.DeviceHolding] {
        let epochs = Dictionary(erased.map { ($0.purpose, $0.oldEpoch) }, uniquingKeysWith: max)
        let purposes = Set(epochs.keys)
        return try await pool.read { db in
            var result: [API.DeviceHolding] = []
            for row in try Row.fetchAll(db, sql: "SELECT devices.id, devices.name, devices.held, users.name AS user_name FROM devices JOIN users ON users.id = devices.user_id WHERE revoked_at IS NULL") {
                guard let list = HeldSegment.fromStorage(row["held"]) else { continue }
                let held = list.filter { entry in
                    entry.segment.household == household && purposes.contains(entry.segment.purpose)
                        && (epochs[entry.segment.purpose].map { entry.epoch <= $0 } ?? true)
                }.map(\.segment.purpose)
                if !held.isEmpty {
                    result.append(API.DeviceHolding(device: row["id"], name: row["name"], user: row["user_name"], purposes: held.sorted()))
                }
            }
            return result
        }
    }
}

extension String {
    /// No line breaks, tabs or other control characters: text shown in a list or a log line (names, contacts, reasons).
    var isOneLine: Bool { !unicodeScalars.contains { $0.properties.generalCategory == .control } }
}

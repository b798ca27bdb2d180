import Foundation
import GRDB
import SyncCore

/// SyncCore's push and pull backends over the SQLite store: one row per
/// segment, one row per element (an append never rewrites a segment), one
/// row per op with its verdict.
struct SQLiteSyncBackend {
    let db: Database
    let device: DeviceIdentity
    let now: UInt64
    let policyStore: PolicyStore
    let userID: Int64
    /// Audit rows for what this push did, written by the caller in the same transaction.
    var audit: [AuditRecord] = []

    init(db: Database, device: DeviceIdentity, now: UInt64, policyStore: PolicyStore, userID: Int64) {
        self.db = db
        self.device = device
        self.now = now
        self.policyStore = policyStore
        self.userID = userID
    }

    static func segmentRow(_ db: Database, _ segment: SegmentKey) throws -> Row? {
        try Row.fetchOne(try db.cachedStatement(sql: "SELECT * FROM segments WHERE household = ? AND purpose = ?"),
                         arguments: [Data(segment.household.bytes), segment.purpose.rawValue])
    }

    static func meta(_ row: Row) -> ElementMeta {
        ElementMeta(seq: UInt64(row["seq"] as Int64), writer: ReplicaID(UInt32(row["writer"] as Int64)), otherSeq: UInt64(row["other_seq"] as Int64))
    }

    static func digest(_ row: Row) -> ContentHash128? {
        let bytes = Array(row["digest"] as Data)
        guard bytes.count == 16 else { return nil }
        let high = bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let low = bytes[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return ContentHash128(high: high, low: low)
    }

    /// Loads a segment; with `only`, just those elements (plus the row's context and digest).
    static func load(_ db: Database, _ segment: SegmentKey, only: Set<ElementKey>? = nil) throws -> ServerSegment? {
        guard let row = try segmentRow(db, segment) else { return nil }
        let id: Int64 = row["id"]
        let context = try CausalContext(storageBytes: Array(row["context"] as Data))
        let contextMeta = ElementMeta(seq: UInt64(row["context_seq"] as Int64), writer: ReplicaID(UInt32(row["context_writer"] as Int64)),
                                      otherSeq: UInt64(row["context_other_seq"] as Int64))
        let digest = Self.digest(row)
        var rows: [(SegmentElement, ElementMeta)] = []
        if let only, digest != nil {
            let statement = try db.cachedStatement(sql: "SELECT seq, writer, other_seq, data FROM elements WHERE segment_id = ? AND key = ?")
            for key in only {
                guard let element = try Row.fetchOne(statement, arguments: [id, Data(key.storageKey)]) else { continue }
                rows.append((try SegmentElement.decodeRow(Array(element["data"] as Data)), meta(element)))
            }
        } else {
            let cursor = try Row.fetchCursor(try db.cachedStatement(sql: "SELECT seq, writer, other_seq, data FROM elements WHERE segment_id = ?"),
                                             arguments: [id])
            while let element = try cursor.next() {
                rows.append((try SegmentElement.decodeRow(Array(element["data"] as Data)), meta(element)))
            }
        }
        return ServerSegment.restore(key: segment, epoch: UInt32(row["epoch"] as Int64), context: context,
                                     contextMeta: contextMeta, createdSeq: UInt64(row["created_seq"] as Int64), digest: digest, rows: rows)
    }

    static func currentEpoch(_ db: Database, _ segment: SegmentKey) throws -> UInt32? {
        let epoch = try Int64.fetchOne(try db.cachedStatement(sql: "SELECT epoch FROM epochs WHERE household = ? AND purpose = ?"),
                                       arguments: [Data(segment.household.bytes), segment.purpose.rawValue])
        if let epoch { return UInt32(epoch) }
        return try segmentRow(db, segment) != nil ? 0 : nil
    }

    /// Writes a segment's row and the given elements' rows, and refreshes its conflicts.
    static func save(_ db: Database, _ segment: ServerSegment, changed: Set<ElementKey>, schema: Schema, now: UInt64) throws {
        let key = segment.state.key
        let householdData = Data(key.household.bytes)
        try db.cachedStatement(sql: """
            INSERT INTO segments (household, purpose, epoch, context, context_seq, context_writer, context_other_seq, last_seq, created_seq, digest)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(household, purpose) DO UPDATE SET epoch = excluded.epoch, context = excluded.context,
                context_seq = excluded.context_seq, context_writer = excluded.context_writer,
                context_other_seq = excluded.context_other_seq, last_seq = excluded.last_seq, digest = excluded.digest
            """).execute(arguments: [householdData, key.purpose.rawValue, Int64(segment.state.epoch), Data(segment.state.context.storageBytes),
                                     Int64(segment.contextMeta.seq), Int64(segment.contextMeta.writer.rawValue),
                                     Int64(segment.contextMeta.otherSeq), Int64(segment.lastSeq), Int64(segment.createdSeq),
                                     Data(segment.state.elementDigest.bytes)])
        guard let id = try Int64.fetchOne(try db.cachedStatement(sql: "SELECT id FROM segments WHERE household = ? AND purpose = ?"),
                                          arguments: [householdData, key.purpose.rawValue]) else { return }
        guard !changed.isEmpty else { return }
        let upsert = try db.cachedStatement(sql: """
            INSERT INTO elements (segment_id, key, seq, writer, other_seq, data) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT(segment_id, key) DO UPDATE SET seq = excluded.seq, writer = excluded.writer,
                other_seq = excluded.other_seq, data = excluded.data
            """)
        for elementKey in changed {
            guard let element = segment.state.element(elementKey), let meta = segment.meta[elementKey] else { continue }
            try upsert.execute(arguments: [id, Data(elementKey.storageKey), Int64(meta.seq), Int64(meta.writer.rawValue),
                                           Int64(meta.otherSeq), Data(element.encodedRow())])
        }
        // The conflict queue holds the post-merge conflicts of changed elements.
        let conflicts = segment.state.conflicts(schema: schema)
        for elementKey in changed {
            let (name, item): (String, String)
            switch elementKey {
            case .field(let field): (name, item) = (field, "")
            case .item(let collection, let id): (name, item) = (collection, id.description)
            default: continue
            }
            if let conflict = conflicts.first(where: { $0.name == name && ($0.item?.description ?? "") == item }) {
                try db.execute(sql: """
                    INSERT INTO conflicts (segment_id, name, item, kind, value_ids, detected_at) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT(segment_id, name, item) DO UPDATE SET kind = excluded.kind, value_ids = excluded.value_ids
                    """, arguments: [id, name, item, conflict.kind.rawValue,
                                     conflict.values.map(\.id.description).joined(separator: ","), Int64(now)])
            } else {
                try db.execute(sql: "DELETE FROM conflicts WHERE segment_id = ? AND name = ? AND item = ?", arguments: [id, name, item])
            }
        }
    }
}

extension SQLiteSyncBackend: PushBackend {
    func storedVerdict(for dot: Dot, segment: SegmentKey, epoch: UInt32) throws -> StoredVerdict? {
        guard let row = try Row.fetchOne(try db.cachedStatement(sql: """
            SELECT fingerprint, rejection FROM ops WHERE household = ? AND purpose = ? AND epoch = ? AND replica = ? AND counter = ?
            """), arguments: [Data(segment.household.bytes), segment.purpose.rawValue, Int64(epoch), Int64(dot.replica.rawValue),
                             Int64(dot.counter)]) else { return nil }
        let rejection: String? = row["rejection"]
        return StoredVerdict(fingerprint: Digest(Array(row["fingerprint"] as Data)), rejection: rejection.map(RefusalReason.init(_:)))
    }

    func currentEpoch(of segment: SegmentKey) throws -> UInt32 {
        try Self.currentEpoch(db, segment) ?? 0
    }

    func householdExists(_ household: HouseholdID) throws -> Bool {
        try Bool.fetchOne(try db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM households WHERE id = ?)"), arguments: [Data(household.bytes)]) ?? false
    }

    mutating func loadSegment(_ segment: SegmentKey, epoch: UInt32, elements: Set<ElementKey>) throws -> ServerSegment? {
        guard let loaded = try Self.load(db, segment, only: elements), loaded.state.epoch == epoch else { return nil }
        return loaded
    }

    mutating func record(_ op: SyncOperation, fingerprint: Digest, rejection: RefusalReason?) throws -> UInt64 {
        try db.cachedStatement(sql: """
            INSERT INTO ops (household, purpose, epoch, replica, counter, fingerprint, rejection, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [Data(op.segment.household.bytes), op.segment.purpose.rawValue, Int64(op.epoch),
                                     Int64(op.dot.replica.rawValue), Int64(op.dot.counter), Data(fingerprint.bytes), rejection?.rawValue,
                                     Int64(now)])
        let seq = db.lastInsertedRowID
        if let rejection {
            // Ops of an erased segment are never kept anywhere (DESIGN §4).
            if rejection != .erased {
                try db.execute(sql: """
                    INSERT INTO quarantine (seq, household, purpose, device_id, user, reason, op, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [seq, Data(op.segment.household.bytes), op.segment.purpose.rawValue, device.deviceID, device.user,
                                     rejection.rawValue, Data(op.encodedBytes()), Int64(now)])
            }
            audit.append(AuditRecord(at: now, actor: device.user, device: device.deviceID, action: "reject",
                                     household: op.segment.household, purpose: op.segment.purpose, count: 1,
                                     detail: "op=\(op.dot) kind=\(op.payload.kindName) reason=\(rejection)"))
        } else {
            // One row per run of accepted writes to a segment: every write is named by its dot.
            let entry = "\(op.dot.counter):\(op.payload.kindName)\(op.payload.targetName.map { "/\($0)" } ?? "")"
            if let last = audit.indices.last, audit[last].action == "write", audit[last].household == op.segment.household.description,
               audit[last].purpose == op.segment.purpose.rawValue, audit[last].count < 64 {
                audit[last].count += 1
                audit[last].detail += " " + entry
            } else {
                audit.append(AuditRecord(at: now, actor: device.user, device: device.deviceID, action: "write",
                                         household: op.segment.household, purpose: op.segment.purpose, count: 1,
                                         detail: "replica=\(op.dot.replica) ops=" + entry))
            }
        }
        return UInt64(seq)
    }

    mutating func save(_ segment: ServerSegment, changed: Set<ElementKey>, created: Bool) throws {
        try Self.save(db, segment, changed: changed, schema: policyStore.schema, now: now)
    }

    mutating func householdCreated(_ household: HouseholdID, by op: SyncOperation, policy: PolicyContext) throws -> PolicyContext {
        try db.execute(sql: "INSERT INTO households (id, created_at, created_by) VALUES (?, ?, ?)",
                       arguments: [Data(household.bytes), Int64(now), device.user])
        try db.execute(sql: "INSERT OR IGNORE INTO assignments (user_id, household, until, created_at) VALUES (?, ?, NULL, ?)",
                       arguments: [userID, Data(household.bytes), Int64(now)])
        try PolicyStore.bumpVersion(db)
        audit.append(AuditRecord(at: now, actor: device.user, device: device.deviceID, action: "createHousehold", household: household,
                                 purpose: .regie, detail: "assigned creator"))
        var updated = policy
        updated.assignments.append(Assignment(household: household))
        return updated
    }
}

extension SQLiteSyncBackend: PullBackend {
    func existingSegments(of households: [HouseholdID]) throws -> [HeldSegment] {
        var result: [HeldSegment] = []
        for household in households {
            for row in try Row.fetchAll(try db.cachedStatement(sql: "SELECT purpose, epoch FROM segments WHERE household = ?"), arguments: [Data(household.bytes)]) {
                result.append(HeldSegment(segment: SegmentKey(household: household, purpose: Purpose(row["purpose"] as String)),
                                          epoch: UInt32(row["epoch"] as Int64)))
            }
        }
        return result
    }

    func currentEpoch(of segment: SegmentKey) throws -> UInt32? {
        try Self.currentEpoch(db, segment)
    }

    func changedSegments(since seq: UInt64, after resumeAfter: SegmentKey?, among: Set<SegmentKey>) throws -> [SegmentKey] {
        guard !among.isEmpty else { return [] }
        let changed = try Row.fetchAll(db, sql: "SELECT household, purpose FROM segments WHERE last_seq > ?", arguments: [Int64(seq)])
            .compactMap { row -> SegmentKey? in
                guard let id = HouseholdID(bytes: Array(row["household"] as Data)) else { return nil }
                return SegmentKey(household: id, purpose: Purpose(row["purpose"] as String))
            }
        return changed.filter { segment in among.contains(segment) && (resumeAfter.map { segment > $0 } ?? true) }.sorted()
    }

    func delta(of segment: SegmentKey, for replica: ReplicaID, since cursor: UInt64) throws -> SegmentPatch? {
        guard let row = try Self.segmentRow(db, segment) else { return nil }
        let id: Int64 = row["id"]
        let context = try CausalContext(storageBytes: Array(row["context"] as Data))
        let contextMeta = ElementMeta(seq: UInt64(row["context_seq"] as Int64), writer: ReplicaID(UInt32(row["context_writer"] as Int64)),
                                      otherSeq: UInt64(row["context_other_seq"] as Int64))
        // Only what another replica changed after the cursor.
        let statement = try db.cachedStatement(sql: """
            SELECT data FROM elements WHERE segment_id = ? AND ((writer != ? AND seq > ?) OR (writer = ? AND other_seq > ?))
            """)
        let r = Int64(replica.rawValue)
        var elements: [SegmentElement] = []
        for element in try Row.fetchAll(statement, arguments: [id, r, Int64(cursor), r, Int64(cursor)]) {
            elements.append(ServerSegment.strip(try SegmentElement.decodeRow(Array(element["data"] as Data)), of: replica))
        }
        guard !elements.isEmpty || contextMeta.effectiveSeq(for: replica) > cursor else { return nil }
        return SegmentPatch(segment: segment, epoch: UInt32(row["epoch"] as Int64), context: context, elements: elements)
    }

    func snapshot(of segment: SegmentKey) throws -> SegmentPatch? {
        guard let row = try Self.segmentRow(db, segment) else { return nil }
        let id: Int64 = row["id"]
        var elements: [SegmentElement] = []
        for element in try Row.fetchAll(try db.cachedStatement(sql: "SELECT data FROM elements WHERE segment_id = ?"), arguments: [id]) {
            elements.append(try SegmentElement.decodeRow(Array(element["data"] as Data)))
        }
        return SegmentPatch(segment: segment, epoch: UInt32(row["epoch"] as Int64),
                            context: try CausalContext(storageBytes: Array(row["context"] as Data)), elements: elements)
    }

    func stateHash(of segment: SegmentKey) throws -> SegmentHash? {
        guard let row = try Self.segmentRow(db, segment) else { return nil }
        let epoch = UInt32(row["epoch"] as Int64)
        let context = try CausalContext(storageBytes: Array(row["context"] as Data))
        guard let digest = Self.digest(row) else {
            return try Self.load(db, segment).map { SegmentHash(segment: segment, epoch: epoch, hash: Digest($0.state.stateHash())) }
        }
        return SegmentHash(segment: segment, epoch: epoch,
                           hash: Digest(SegmentState.stateHash(key: segment, epoch: epoch, context: context, elementDigest: digest)))
    }

    func segmentsCreated(after seq: UInt64, of households: [HouseholdID]) throws -> Set<SegmentKey> {
        let wanted = Set(households)
        var result = Set<SegmentKey>()
        for row in try Row.fetchAll(db, sql: "SELECT household, purpose FROM segments WHERE created_seq > ?", arguments: [Int64(seq)]) {
            guard let id = HouseholdID(bytes: Array(row["household"] as Data)), wanted.contains(id) else { continue }
            result.insert(SegmentKey(household: id, purpose: Purpose(row["purpose"] as String)))
        }
        return result
    }

    func recordedHeld(by replica: ReplicaID) throws -> [HeldSegment]? {
        let data = try Data.fetchOne(try db.cachedStatement(sql: "SELECT held FROM devices WHERE id = ?"), arguments: [device.deviceID])
        return HeldSegment.fromStorage(data)
    }

    func raisedEpochs(of households: [HouseholdID]) throws -> [HeldSegment] {
        guard try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM epochs)") == true else { return [] }
        var result: [HeldSegment] = []
        for household in households {
            for row in try Row.fetchAll(db, sql: "SELECT purpose, epoch FROM epochs WHERE household = ?", arguments: [Data(household.bytes)]) {
                result.append(HeldSegment(segment: SegmentKey(household: household, purpose: Purpose(row["purpose"] as String)),
                                          epoch: UInt32(row["epoch"] as Int64)))
            }
        }
        return result.sorted()
    }

    func maxSeq() throws -> UInt64 {
        UInt64(try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'ops'") ?? 0)
    }
}

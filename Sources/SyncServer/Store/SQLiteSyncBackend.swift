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
    /// The elements each segment this push loaded had in conflict when loaded:
    /// only those can have a row in `conflicts` to delete when they stop.
    private var conflictedAtLoad: [SegmentKey: Set<ElementKey>] = [:]
    /// Segment rows a push read for their epoch, kept for the load that follows.
    private var rowsForLoad: [SegmentKey: SegmentRow] = [:]
    /// While a pull reads (after the push, in its transaction) rows cannot
    /// change, so list, delta, hash and epoch lookups of one segment share one
    /// read. Nil while a push writes.
    private let snapshotRows: SnapshotRows?

    private final class SnapshotRows {
        var rows: [SegmentKey: SegmentRow?] = [:]
        /// Households whose every segment row is in `rows`, by key.
        var households: [HouseholdID: [SegmentKey]] = [:]
    }

    init(db: Database, device: DeviceIdentity, now: UInt64, policyStore: PolicyStore, userID: Int64, readSnapshot: Bool = false) {
        self.db = db
        self.device = device
        self.now = now
        self.policyStore = policyStore
        self.userID = userID
        snapshotRows = readSnapshot ? SnapshotRows() : nil
    }

    /// A segment's row, once per read snapshot.
    func row(_ segment: SegmentKey) throws -> SegmentRow? {
        guard let cache = snapshotRows else { return try Self.segmentRow(db, segment) }
        if let hit = cache.rows[segment] { return hit }
        if cache.households[segment.household] != nil { return nil }
        let row = try Self.segmentRow(db, segment)
        cache.rows[segment] = row
        return row
    }

    /// Every segment row of a household (one indexed read), once per read snapshot:
    /// a pull lists, checks for changes and reads the same few segments.
    func rows(of household: HouseholdID) throws -> [(SegmentKey, SegmentRow)] {
        if let cache = snapshotRows, let keys = cache.households[household] {
            return keys.compactMap { key in cache.rows[key].flatMap { $0 }.map { (key, $0) } }
        }
        var result: [(SegmentKey, SegmentRow)] = []
        let rows = try Row.fetchCursor(try db.cachedStatement(sql: "SELECT purpose, \(Self.rowColumns) FROM segments WHERE household = ?"),
                                       arguments: [Data(household.bytes)])
        while let row = try rows.next() {
            result.append((SegmentKey(household: household, purpose: Purpose(row[0] as String)), try Self.segmentRow(row, from: 1)))
        }
        if let cache = snapshotRows {
            for (key, row) in result { cache.rows[key] = row }
            cache.households[household] = result.map(\.0)
        }
        return result
    }

    /// A segment's row, read by column position (name lookups cost more than the query).
    struct SegmentRow {
        var id: Int64
        var epoch: UInt32
        /// The stored causal context, decoded only where it is needed: a pull
        /// lists every segment of a household but sends few of them.
        var contextBytes: [UInt8]
        var contextMeta: ElementMeta
        var createdSeq: UInt64
        /// The stored sum of element hashes (nil in rows from before it was kept).
        var digest: ContentHash128?
        /// Sequence of the segment's latest change.
        var lastSeq: UInt64

        func context() throws -> CausalContext { try CausalContext(storageBytes: contextBytes) }
    }

    static let rowColumns = "id, epoch, context, context_seq, context_writer, context_other_seq, created_seq, digest, last_seq"

    static func segmentRow(_ db: Database, _ segment: SegmentKey) throws -> SegmentRow? {
        guard let row = try Row.fetchOne(try db.cachedStatement(sql: """
            SELECT \(rowColumns) FROM segments WHERE household = ? AND purpose = ?
            """), arguments: [Data(segment.household.bytes), segment.purpose.rawValue]) else { return nil }
        return try segmentRow(row, from: 0)
    }

    /// A segment row from `rowColumns`, starting at column `first`.
    static func segmentRow(_ row: Row, from first: Int) throws -> SegmentRow {
        SegmentRow(id: row[first], epoch: UInt32(row[first + 1] as Int64),
                   contextBytes: try row.withUnsafeData(atIndex: first + 2) { Array($0 ?? Data()) },
                   contextMeta: ElementMeta(seq: UInt64(row[first + 3] as Int64), writer: ReplicaID(UInt32(row[first + 4] as Int64)),
                                            otherSeq: UInt64(row[first + 5] as Int64)),
                   createdSeq: UInt64(row[first + 6] as Int64), digest: digest(row[first + 7] as Data),
                   lastSeq: UInt64(row[first + 8] as Int64))
    }

    /// The element stored in column `index` of a cursor's row, read in place
    /// (a fetched row would copy every column first).
    static func decodeElement(_ row: Row, at index: Int) throws -> SegmentElement {
        try row.withUnsafeData(atIndex: index) { data in
            try SegmentElement.decodeRow(Array(data ?? Data()))  // a NULL decodes as truncated
        }
    }

    /// An element row's metadata from `seq, writer, other_seq` at positions 0–2.
    static func meta(_ row: Row) -> ElementMeta {
        ElementMeta(seq: UInt64(row[0] as Int64), writer: ReplicaID(UInt32(row[1] as Int64)), otherSeq: UInt64(row[2] as Int64))
    }

    static func digest(_ data: Data) -> ContentHash128? {
        guard data.count == 16 else { return nil }
        let bytes = Array(data)
        let high = bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let low = bytes[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return ContentHash128(high: high, low: low)
    }

    /// Loads a segment; with `only`, just those elements (plus the row's context and digest).
    /// `row`: the segment's row when the caller has just read it.
    static func load(_ db: Database, _ segment: SegmentKey, only: Set<ElementKey>? = nil, row knownRow: SegmentRow? = nil) throws -> ServerSegment? {
        guard let row = try knownRow ?? segmentRow(db, segment) else { return nil }
        var rows: [(SegmentElement, ElementMeta)] = []
        if let only, row.digest != nil {
            let statement = try db.cachedStatement(sql: "SELECT seq, writer, other_seq, data FROM elements WHERE segment_id = ? AND key = ?")
            for key in only {
                guard let element = try Row.fetchOne(statement, arguments: [row.id, Data(key.storageKey)]) else { continue }
                rows.append((try decodeElement(element, at: 3), meta(element)))
            }
        } else {
            let cursor = try Row.fetchCursor(try db.cachedStatement(sql: "SELECT seq, writer, other_seq, data FROM elements WHERE segment_id = ?"),
                                             arguments: [row.id])
            while let element = try cursor.next() { rows.append((try decodeElement(element, at: 3), meta(element))) }
        }
        // Rows come in storage-key order (varint bytes), not element order; joining
        // them sorted keeps building a large log or goal list linear.
        rows.sort { $0.0.key < $1.0.key }
        return ServerSegment.restore(key: segment, epoch: row.epoch, context: try row.context(), contextMeta: row.contextMeta,
                                     createdSeq: row.createdSeq, digest: row.digest, rows: rows)
    }

    static func currentEpoch(_ db: Database, _ segment: SegmentKey) throws -> UInt32? {
        // A raised epoch, else 0 for a segment that exists, else nil: one statement, as every push asks.
        let household = Data(segment.household.bytes)
        return try Int64.fetchOne(try db.cachedStatement(sql: """
            SELECT COALESCE((SELECT epoch FROM epochs WHERE household = ? AND purpose = ?),
                            (SELECT 0 FROM segments WHERE household = ? AND purpose = ?))
            """), arguments: [household, segment.purpose.rawValue, household, segment.purpose.rawValue]).map { UInt32($0) }
    }

    /// Writes a segment's row and the given elements' rows, and refreshes its
    /// conflicts. `conflictedBefore`, when known, names the changed elements that
    /// were in conflict before (the others have no conflict row to delete).
    static func save(_ db: Database, _ segment: ServerSegment, changed: Set<ElementKey>, schema: Schema, now: UInt64,
                     conflictedBefore: Set<ElementKey>? = nil) throws {
        let key = segment.state.key
        let householdData = Data(key.household.bytes)
        let upsertSegment = try db.cachedStatement(sql: """
            INSERT INTO segments (household, purpose, epoch, context, context_seq, context_writer, context_other_seq, last_seq, created_seq, digest)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(household, purpose) DO UPDATE SET epoch = excluded.epoch, context = excluded.context,
                context_seq = excluded.context_seq, context_writer = excluded.context_writer,
                context_other_seq = excluded.context_other_seq, last_seq = excluded.last_seq, digest = excluded.digest
            RETURNING id
            """)
        guard let id = try Int64.fetchOne(upsertSegment, arguments: [householdData, key.purpose.rawValue, Int64(segment.state.epoch), Data(segment.state.context.storageBytes),
                                     Int64(segment.contextMeta.seq), Int64(segment.contextMeta.writer.rawValue),
                                     Int64(segment.contextMeta.otherSeq), Int64(segment.lastSeq), Int64(segment.createdSeq),
                                     Data(segment.state.elementDigest.bytes)]) else { return }
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
        // The conflict queue holds the post-merge conflicts of changed elements
        // (listed only when one of them needs its row written or deleted).
        lazy var conflicts = segment.state.conflicts(schema: schema)
        for elementKey in changed {
            if let conflictedBefore, !conflictedBefore.contains(elementKey), !segment.state.isInConflict(elementKey) { continue }
            let (name, item): (String, String)
            switch elementKey {
            case .field(let field): (name, item) = (field, "")
            case .item(let collection, let id): (name, item) = (collection, id.description)
            default: continue
            }
            if let conflict = conflicts.first(where: { $0.name == name && ($0.item?.description ?? "") == item }) {
                try db.cachedStatement(sql: """
                    INSERT INTO conflicts (segment_id, name, item, kind, value_ids, detected_at) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT(segment_id, name, item) DO UPDATE SET kind = excluded.kind, value_ids = excluded.value_ids
                    """).execute(arguments: [id, name, item, conflict.kind.rawValue,
                                     conflict.values.map(\.id.description).joined(separator: ","), Int64(now)])
            } else {
                try db.cachedStatement(sql: "DELETE FROM conflicts WHERE segment_id = ? AND name = ? AND item = ?")
                    .execute(arguments: [id, name, item])
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
        // A stored fingerprint of another length (none is written) matches nothing.
        let stored = row["fingerprint"] as Data
        let fingerprint = ContentHash128(bytes: stored) ?? ContentHash128.of(Array(stored))
        return StoredVerdict(fingerprint: fingerprint, rejection: rejection.map(RefusalReason.init(_:)))
    }

    func highestRecordedCounter(of replica: ReplicaID, segment: SegmentKey, epoch: UInt32) throws -> UInt64 {
        // The unique index on (household, purpose, epoch, replica, counter) answers this from its last entry.
        let highest = try Int64.fetchOne(try db.cachedStatement(sql: """
            SELECT MAX(counter) FROM ops WHERE household = ? AND purpose = ? AND epoch = ? AND replica = ?
            """), arguments: [Data(segment.household.bytes), segment.purpose.rawValue, Int64(epoch), Int64(replica.rawValue)])
        return highest.map { UInt64(max(0, $0)) } ?? 0
    }

    mutating func currentEpoch(of segment: SegmentKey) throws -> UInt32 {
        // A stored segment's row carries the current epoch (an erasure deletes
        // the row whose epoch it raises), and the push loads that row next.
        if let row = try Self.segmentRow(db, segment) {
            rowsForLoad[segment] = row
            return row.epoch
        }
        return try Self.currentEpoch(db, segment) ?? 0
    }

    func householdExists(_ household: HouseholdID) throws -> Bool {
        try Bool.fetchOne(try db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM households WHERE id = ?)"), arguments: [Data(household.bytes)]) ?? false
    }

    mutating func loadSegment(_ segment: SegmentKey, epoch: UInt32, elements: Set<ElementKey>) throws -> ServerSegment? {
        guard let loaded = try Self.load(db, segment, only: elements, row: rowsForLoad.removeValue(forKey: segment)),
              loaded.state.epoch == epoch else { return nil }
        conflictedAtLoad[segment] = elements.filter(loaded.state.isInConflict)
        return loaded
    }

    mutating func record(_ op: SyncOperation, fingerprint: ContentHash128, rejection: RefusalReason?) throws -> UInt64 {
        try db.cachedStatement(sql: """
            INSERT INTO ops (household, purpose, epoch, replica, counter, fingerprint, rejection, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [Data(op.segment.household.bytes), op.segment.purpose.rawValue, Int64(op.epoch),
                                     Int64(op.dot.replica.rawValue), Int64(op.dot.counter), Data(fingerprint.bytes), rejection?.rawValue,
                                     Int64(now)])
        let seq = db.lastInsertedRowID
        if let rejection {
            // Ops of an erased segment are never kept anywhere (DESIGN §4).
            if rejection != .erased {
                try db.cachedStatement(sql: """
                    INSERT INTO quarantine (seq, household, purpose, device_id, user, reason, op, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """).execute(arguments: [seq, Data(op.segment.household.bytes), op.segment.purpose.rawValue, device.deviceID, device.user,
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

    mutating func save(_ segment: consuming ServerSegment, changed: Set<ElementKey>, created: Bool) throws {
        try Self.save(db, segment, changed: changed, schema: policyStore.schema, now: now,
                      conflictedBefore: conflictedAtLoad[segment.state.key])
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
        try households.flatMap { try rows(of: $0).map { HeldSegment(segment: $0.0, epoch: $0.1.epoch) } }
    }

    func currentEpoch(of segment: SegmentKey) throws -> UInt32? {
        try Self.currentEpoch(db, segment)
    }

    func changedSegments(since seq: UInt64, after resumeAfter: SegmentKey?, among sortedAmong: [SegmentKey]) throws -> [SegmentKey] {
        let among = Set(sortedAmong)
        // Per household of the device (indexed), so the cost follows what the
        // device holds, not how much the whole server changed since its cursor.
        var changed: [SegmentKey] = []
        for household in Set(among.map(\.household)) {
            for (segment, row) in try rows(of: household) where row.lastSeq > seq && among.contains(segment) {
                if resumeAfter.map({ segment > $0 }) ?? true { changed.append(segment) }
            }
        }
        return changed.sorted()
    }

    func delta(of segment: SegmentKey, for replica: ReplicaID, since cursor: UInt64) throws -> SegmentPatch? {
        guard let row = try self.row(segment) else { return nil }
        // Only what another replica changed after the cursor. `other_seq` never
        // exceeds `seq`, so `seq > cursor` holds for both and the index finds them.
        let statement = try db.cachedStatement(sql: """
            SELECT data FROM elements INDEXED BY elements_changed
            WHERE segment_id = ? AND seq > ? AND (writer != ? OR other_seq > ?)
            """)
        var elements: [SegmentElement] = []
        let rows = try Row.fetchCursor(statement, arguments: [row.id, Int64(cursor), Int64(replica.rawValue), Int64(cursor)])
        while let element = try rows.next() {
            elements.append(ServerSegment.strip(try Self.decodeElement(element, at: 0), of: replica))
        }
        guard !elements.isEmpty || row.contextMeta.effectiveSeq(for: replica) > cursor else { return nil }
        return SegmentPatch(segment: segment, epoch: row.epoch, context: try row.context(), elements: elements)
    }

    func snapshot(of segment: SegmentKey) throws -> SegmentPatch? {
        guard let row = try self.row(segment) else { return nil }
        var elements: [SegmentElement] = []
        let rows = try Row.fetchCursor(try db.cachedStatement(sql: "SELECT data FROM elements WHERE segment_id = ?"), arguments: [row.id])
        while let element = try rows.next() { elements.append(try Self.decodeElement(element, at: 0)) }
        // In element order, as deltas are: a device then joins a whole log in one pass.
        elements.sort { $0.key < $1.key }
        return SegmentPatch(segment: segment, epoch: row.epoch, context: try row.context(), elements: elements)
    }

    func stateHash(of segment: SegmentKey) throws -> SegmentHash? {
        guard let row = try self.row(segment) else { return nil }
        guard let digest = row.digest else {
            return try Self.load(db, segment).map { SegmentHash(segment: segment, epoch: row.epoch, word: $0.state.stateHashWord()) }
        }
        return SegmentHash(segment: segment, epoch: row.epoch,
                           word: SegmentState.stateHashWord(key: segment, epoch: row.epoch, context: try row.context(), elementDigest: digest))
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
        guard try Bool.fetchOne(try db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM epochs)")) == true else { return [] }
        var result: [HeldSegment] = []
        let statement = try db.cachedStatement(sql: "SELECT purpose, epoch FROM epochs WHERE household = ?")
        for household in households {
            for row in try Row.fetchAll(statement, arguments: [Data(household.bytes)]) {
                result.append(HeldSegment(segment: SegmentKey(household: household, purpose: Purpose(row["purpose"] as String)),
                                          epoch: UInt32(row["epoch"] as Int64)))
            }
        }
        return result.sorted()
    }

    func maxSeq() throws -> UInt64 {
        UInt64(try Int64.fetchOne(try db.cachedStatement(sql: "SELECT seq FROM sqlite_sequence WHERE name = 'ops'")) ?? 0)
    }
}

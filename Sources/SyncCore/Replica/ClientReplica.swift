/// The device's replica as a value-type state machine (DESIGN §3.1): per
/// segment a confirmed state (everything the server accepted or sent) and an
/// ordered overlay of the device's own pending ops. What the user sees is
/// confirmed + pending. It does no I/O and reads no clock: `fieldcli`
/// persists it and performs the HTTP calls; tests drive it directly.
public struct ClientReplica: Sendable {
    public let replica: ReplicaID
    public let user: String
    public internal(set) var schema: Schema
    public internal(set) var policy: PolicyContext
    public internal(set) var clock: HybridLogicalClock
    /// Server-confirmed state of every segment this device holds. A sorted
    /// map: a dictionary of a few hundred 150-byte states keeps up to twice
    /// that in empty buckets. Mutate it in place (`update`, `[key, default:]`).
    public internal(set) var confirmed: SortedMap<SegmentKey, SegmentState> = [:]
    /// The device's own ops not yet accepted, in the order they were made.
    public internal(set) var pending: [SyncOperation] = []
    /// The last counter used per segment; persisted before an op is queued.
    public internal(set) var counters: SortedMap<SegmentKey, UInt64> = [:]
    /// The epoch the device writes for, per segment it has heard of.
    public internal(set) var epochs: SortedMap<SegmentKey, UInt32> = [:]
    /// Ops the server (or a purge) rejected, kept for the user (DESIGN §4).
    public internal(set) var rejected: [RejectedRecord] = []
    /// Rejected ops dropped because their segment was purged; the server's
    /// quarantine still holds those that were pushed.
    public internal(set) var purgedRejectedCount = 0
    public internal(set) var cursor = SyncCursor.start
    /// Households created on this device that the server has not confirmed.
    public internal(set) var locallyCreated: Set<HouseholdID> = []
    /// The latest server time seen; offline policy checks use max(device clock, this).
    public internal(set) var lastServerTime: UInt64 = 0
    /// The server asked for the full held list (digest mismatch).
    public internal(set) var sendFullHeld = true
    /// Remote stamps seen beyond wall clock + max drift (DESIGN §3 `clockSkew`).
    public internal(set) var clockSkewCount = 0
    /// How far this device's clock was ahead of the server's at the last sync, in milliseconds,
    /// when more than the clock's allowed drift (else 0): its stamps lie in the future, and only
    /// the device itself can tell its owner (the others see just stamps ahead of them).
    public internal(set) var clockAheadOfServer: UInt64 = 0
    /// Segments fetched again whole after the server showed this device's store to be older than what
    /// it sent (restored from a backup): still shown, not reported as held, so the server sends each as
    /// a snapshot (with the device's own writes, which deltas leave out). One the server no longer sends
    /// once it has sent everything is no longer readable and is purged.
    public internal(set) var refreshing: Set<SegmentKey> = []
    /// Local reads waiting to be uploaded (DESIGN §7).
    public internal(set) var auditQueue: [AuditEvent] = []
    public internal(set) var lastAuditSeq: UInt64 = 0
    public internal(set) var lastAuditHash = Digest(Array(repeating: 0, count: 16))
    /// Confirmed + pending, kept only for segments with pending ops, and
    /// built when first read: a write to a segment without one only queues its
    /// op (most are never read before the next sync, which would drop them).
    var overlays: [SegmentKey: SegmentState] = [:]
    /// Segments with pending ops whose view is not built yet (see `lendView`).
    var unviewed = Set<SegmentKey>()

    public init(replica: ReplicaID, user: String, schema: Schema, policy: PolicyContext,
                clock: HybridLogicalClock = HybridLogicalClock()) {
        self.replica = replica
        self.user = user
        self.schema = schema
        self.policy = policy
        self.clock = clock
    }

    /// A rejected op as the device keeps it.
    public struct RejectedRecord: Hashable, Sendable, Codable {
        public var op: SyncOperation
        public var reason: RefusalReason
        /// Device wall time when the rejection arrived.
        public var at: UInt64
        public init(op: SyncOperation, reason: RefusalReason, at: UInt64) {
            self.op = op
            self.reason = reason
            self.at = at
        }
    }

    // MARK: Reading

    /// What the user sees of a segment: confirmed + pending.
    public func view(_ segment: SegmentKey) -> SegmentState? {
        if let overlay = overlays[segment] { return overlay }
        return unviewed.contains(segment) ? makeView(segment) : confirmed[segment]
    }

    /// A segment's view built from its confirmed state and pending ops.
    func makeView(_ segment: SegmentKey) -> SegmentState {
        var view = (confirmed[segment] ?? SegmentState(key: segment, epoch: epochs[segment] ?? 0)).asView
        // Each op's segment compared where it lies: `for op in pending` copied every op of the list.
        pending.withUnsafeBufferPointer { ops in
            for index in ops.indices where ops[index].segment == segment && ops[index].epoch == view.epoch { view.apply(ops[index]) }
        }
        return view
    }

    /// Reads what the user sees of a segment where it lies; nil when the
    /// device has nothing of it. `view` returns a copy, which retains each of
    /// the state's buffers: hot paths read in place.
    public func withView<Result>(_ segment: SegmentKey, _ body: (SegmentState) throws -> Result) rethrows -> Result? {
        // A view comes out of its dictionary as a copy (a dictionary cannot lend a value);
        // a confirmed state is read where it lies.
        if let overlay = overlays[segment] { return try body(overlay) }
        if unviewed.contains(segment) { return try body(makeView(segment)) }
        return try confirmed.withValue(segment) { try body($0) }
    }

    /// What the user sees of a segment, lent in place to `body`, which must
    /// only read it; nil when the device shows nothing of it. `withView`
    /// copies a view out of its dictionary, and a read through a shared value
    /// copies a state before a call the optimizer cannot see into (see
    /// PullBackend); through `inout`, neither is copied.
    /// A view not built yet is built here and kept.
    mutating func lendView<Result>(_ segment: SegmentKey, _ body: (inout SegmentState) -> Result) -> Result? {
        if unviewed.remove(segment) != nil { overlays[segment] = makeView(segment) }
        if let index = overlays.index(forKey: segment) { return body(&overlays.values[index]) }
        return confirmed.update(segment) { body(&$0) }
    }

    /// Every segment key the device shows (held or with pending ops).
    public var visibleSegments: [SegmentKey] {
        Array(Set(confirmed.keys).union(overlays.keys).union(unviewed)).sorted()
    }

    /// Households this device holds or created.
    public var households: [HouseholdID] {
        Array(Set(visibleSegments.map(\.household)).union(locallyCreated)).sorted()
    }

    /// Segments of one household the device shows.
    public func segments(of household: HouseholdID) -> [SegmentKey] {
        visibleSegments.filter { $0.household == household }
    }

    /// The time offline policy checks use: max(device clock, last server time).
    public func policyTime(wall: UInt64) -> UInt64 { max(wall, lastServerTime) }

    /// What the device holds, for the sync request's digest: less the segments being fetched again
    /// (`refreshing`), which the server then sends whole. The usual case keeps to one `map`: a
    /// filtering closure here, reading `refreshing`, cost a request a quarter more instructions.
    public var heldSegments: [HeldSegment] {
        guard !refreshing.isEmpty else { return confirmed.values.map { HeldSegment(segment: $0.key, epoch: $0.epoch) }.sorted() }
        return confirmed.values.filter { !refreshing.contains($0.key) }.map { HeldSegment(segment: $0.key, epoch: $0.epoch) }.sorted()
    }

    // MARK: Local writes

    /// Creates a household offline. Returns its ID; the label (if any) is a REGIE field.
    public mutating func createHousehold(id: HouseholdID, label: String?, wall: UInt64) throws(SyncCoreError) -> HouseholdID {
        let segment = SegmentKey(household: id, purpose: .regie)
        guard confirmed[segment] == nil, !locallyCreated.contains(id) else {
            throw SyncCoreError(.refused, "Household \(id) already exists on this device.", refusal: .invalid)
        }
        locallyCreated.insert(id)
        do {
            try write(segment: segment, payload: .createHousehold, wall: wall)
            if let label { try write(segment: segment, payload: .set(field: "label", value: label, resolves: []), wall: wall) }
        } catch {
            locallyCreated.remove(id)
            throw error
        }
        return id
    }

    /// Writes a field; its purpose comes from the schema.
    @discardableResult
    public mutating func set(household: HouseholdID, field name: String, value: String, wall: UInt64) throws(SyncCoreError) -> SyncOperation {
        // Only the purpose is read, in place: `schema.field` copied the whole definition.
        guard let purpose = schema.withField(name, { $0.purpose }) else {
            throw SyncCoreError(.refused, unknownFieldMessage(name, household: household, wall: wall), refusal: .unknownField)
        }
        return try write(segment: SegmentKey(household: household, purpose: purpose),
                         payload: .set(field: name, value: value, resolves: []), wall: wall)
    }

    /// Names the fields the user could have meant: close spellings first, else
    /// the ones they may write in this household (`show` lists only fields with
    /// values, so it cannot tell a worker what the schema calls a field).
    func unknownFieldMessage(_ name: String, household: HouseholdID, wall: UInt64) -> String {
        let now = policyTime(wall: wall)
        let writable = schema.fields.filter { field in
            !field.retired && PolicyEvaluator.check(.write, segment: SegmentKey(household: household, purpose: field.purpose), context: policy,
                                                    now: now, createdLocally: locallyCreated.contains(household),
                                                    serverOnly: schema.isServerOnly(field.purpose)).isAllowed
        }.map(\.name)
        var message = "There is no field \"\(name)\" in schema \(schema.name) v\(schema.version)."
        let close = schema.fields.filter { !$0.retired && Self.isCloseSpelling($0.name, of: name) }.map(\.name)
        if !close.isEmpty {
            message += " Did you mean \(close.prefix(3).joined(separator: " or "))?"
        } else if writable.isEmpty {
            message += " You may write no field of this household."
        } else {
            message += " Fields you may write here: \(writable.joined(separator: ", "))."
        }
        return message
    }

    /// Same letters but for case or up to two edits (a typo), or one name inside the other.
    static func isCloseSpelling(_ candidate: String, of typed: String) -> Bool {
        let a = Array(candidate.lowercased().utf8), b = Array(typed.lowercased().utf8)
        if b.count >= 3, a.count >= 3, a.starts(with: b) || b.starts(with: a) { return true }
        guard abs(a.count - b.count) <= 2 else { return false }
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in stride(from: 1, through: b.count, by: 1) {
                current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count] <= Swift.min(2, Swift.max(a.count, b.count) / 3)
    }

    /// Resolves a conflicting field by writing the picked value (or a new one)
    /// over every value the device sees.
    @discardableResult
    public mutating func resolve(household: HouseholdID, field name: String, pick: Dot?, value: String?, wall: UInt64) throws(SyncCoreError) -> SyncOperation {
        guard let field = schema.field(name) else {
            throw SyncCoreError(.refused, "There is no field \"\(name)\" in the schema.", refusal: .unknownField)
        }
        let segment = SegmentKey(household: household, purpose: field.purpose)
        guard let register = view(segment)?.fields[name], !register.values.isEmpty else {
            throw SyncCoreError(.notFound, "Field \(name) of household \(household) has no value on this device.")
        }
        let chosen: String
        if let pick {
            guard let picked = register.values.first(where: { $0.dot == pick }) else {
                let ids = register.values.map(\.dot.description).joined(separator: ", ")
                throw SyncCoreError(.notFound, "Value \(pick) is not a current value of \(name). Current value IDs: \(ids).")
            }
            chosen = picked.value
        } else if let value {
            chosen = value
        } else {
            throw SyncCoreError(.refused, "Give --pick VALUE_ID or --value V.", refusal: .invalid)
        }
        return try write(segment: segment, payload: .set(field: name, value: chosen, resolves: register.values.map(\.dot)), wall: wall)
    }

    /// Appends a log entry (a contact log, by default).
    @discardableResult
    public mutating func appendLog(household: HouseholdID, purpose: Purpose, log: String = "contactlog", kind: String,
                                   occurredAt: UInt64?, text: String, correctionOf: Dot? = nil, wall: UInt64) throws(SyncCoreError) -> SyncOperation {
        let segment = SegmentKey(household: household, purpose: purpose)
        if let correctionOf, correctionOf.counter == 0 {
            // No entry has counter 0; the body would store it as "not a correction".
            throw SyncCoreError(.notFound, "Log entry \(correctionOf) does not exist. Run 'fieldcli log list' for entry IDs.")
        }
        if let correctionOf, let current = view(segment), current.logs[log]?[dot: correctionOf] == nil,
           !current.context.contains(correctionOf) || current.holdsOtherThanLogEntry(correctionOf, in: log) {
            // Checked here, not left to the validator: its answer (`invalid`) would not say which ID is
            // wrong. A segment the device does not hold is left to it (the purpose may not be granted),
            // and so is an entry seen but refused (`dependsOnRejected`). A dot the segment holds as a field
            // value or a goal is named here too: the validator would call it `dependsOnRejected`.
            throw SyncCoreError(.notFound, "There is no entry \(correctionOf) in the \(purpose) \(log) of this household. "
                                + "Run 'fieldcli log list' for entry IDs.")
        }
        let body = LogEntryBody(kind: kind, occurredAt: occurredAt ?? wall, text: text, correctionOf: correctionOf)
        return try write(segment: segment, payload: .append(log: log, entry: body), wall: wall)
    }

    /// Inserts an item so that it lands at `index` of the live items (clamped).
    @discardableResult
    public mutating func insertItem(household: HouseholdID, purpose: Purpose, collection: String = "doelen",
                                    at index: Int? = nil, text: String, wall: UInt64) throws(SyncCoreError) -> SyncOperation {
        let segment = SegmentKey(household: household, purpose: purpose)
        let live = liveOrder(of: collection, in: segment)
        let at = min(max(0, index ?? live.count), live.count)
        let lower = at > 0 ? live[at - 1].sortKey : nil
        let upper = at < live.count ? live[at].sortKey : nil
        let fraction = PositionKey.between(lower, upper)
        return try write(segment: segment, payload: .insert(collection: collection, position: fraction, text: text), wall: wall)
    }

    /// The live items of a collection as the user sees it, in position order
    /// (IDs and sort keys; `view` gives the items themselves). Read from the
    /// view lent in place (`withView` copies a view out of its dictionary),
    /// which is built here if it was not yet, for the writes that follow.
    public mutating func liveOrder(of collection: String, in segment: SegmentKey) -> [ItemCollection.Place] {
        lendView(segment) { $0.collections.withValue(collection) { $0.liveOrder } ?? [] } ?? []
    }

    /// How many live items a collection has as the user sees it: `liveOrder`'s
    /// count without building and sorting the items' position keys.
    public mutating func liveCount(of collection: String, in segment: SegmentKey) -> Int {
        lendView(segment) { $0.collections.withValue(collection) { $0.liveCount } ?? 0 } ?? 0
    }

    @discardableResult
    public mutating func editItem(household: HouseholdID, purpose: Purpose, collection: String = "doelen", item: Dot,
                                  field: ItemField, value: String, wall: UInt64) throws(SyncCoreError) -> SyncOperation {
        let segment = SegmentKey(household: household, purpose: purpose)
        try requireItem(item, in: segment, collection: collection)
        if field == .status, let text = view(segment)?.collections[collection]?[item]?.text.winner?.value {
            // Re-assert the text with the status: if someone removes the item concurrently, the
            // remove drops the values it saw, and this keeps the goal's words with the kept item.
            try write(segment: segment, payload: .edit(collection: collection, item: item, field: .text, value: text), wall: wall)
        }
        return try write(segment: segment, payload: .edit(collection: collection, item: item, field: field, value: value), wall: wall)
    }

    @discardableResult
    public mutating func removeItem(household: HouseholdID, purpose: Purpose, collection: String = "doelen", item: Dot,
                                    wall: UInt64) throws(SyncCoreError) -> SyncOperation {
        let segment = SegmentKey(household: household, purpose: purpose)
        try requireItem(item, in: segment, collection: collection)
        return try write(segment: segment, payload: .remove(collection: collection, item: item), wall: wall)
    }

    @discardableResult
    public mutating func moveItem(household: HouseholdID, purpose: Purpose, collection: String = "doelen", item: Dot,
                                  to index: Int, wall: UInt64) throws(SyncCoreError) -> SyncOperation {
        let segment = SegmentKey(household: household, purpose: purpose)
        try requireItem(item, in: segment, collection: collection)
        let others = liveOrder(of: collection, in: segment).filter { $0.id != item }
        let at = min(max(0, index), others.count)
        let fraction = PositionKey.between(at > 0 ? others[at - 1].sortKey : nil, at < others.count ? others[at].sortKey : nil)
        return try write(segment: segment, payload: .move(collection: collection, item: item, position: fraction), wall: wall)
    }

    private mutating func requireItem(_ item: Dot, in segment: SegmentKey, collection: String) throws(SyncCoreError) {
        // Read in the lent view, not copied out with the collection and the item (`view(_:)?.collections[…]?[item]`).
        let found = lendView(segment) { view in
            view.collections.withValue(collection) { $0.withItem(item) { (live: $0.isLive, complete: $0.hasBasePosition) } } ?? nil
        } ?? nil
        guard let found, found.live else {
            throw SyncCoreError(.notFound, "Item \(item) is not in \(collection) of \(segment.purpose) for this household. Run 'fieldcli goal list H'.")
        }
        // Known only from this device's own pending edit: its copy of the segment was dropped (a
        // failed state check, a damaged store) and the re-fetch has not come yet.
        guard found.complete else {
            throw SyncCoreError(.notFound, "Item \(item) of \(collection) is not complete on this device yet: its copy of \(segment.purpose) "
                                + "is being fetched again. Run 'fieldcli sync', then try again.")
        }
    }

    /// Checks a local write with the shared validator and queues it. The
    /// counter is taken here; the caller persists the replica before it
    /// reports success (DESIGN §3: persist a counter before using it).
    @discardableResult
    mutating func write(segment: SegmentKey, payload: consuming OperationPayload, wall: UInt64) throws(SyncCoreError) -> SyncOperation {
        // Each map is searched once: its slot serves the read here and the write below (nothing
        // between changes the maps). A device holds hundreds of segments, and each search of a
        // cold map is a string of cache misses.
        let counterSlot = counters.slot(of: segment)
        let creating = payload == .createHousehold  // asked before the payload moves into the draft
        // A write that refers to an item or entry is checked on the view, which its pending ops
        // may have made; any other is checked as well on the confirmed state (the view's differs
        // only by the device's own dots, which the op's counter, taken from `counters`, covers).
        // Without a counter for the segment, the counter comes from the view's own dots. Built
        // first: a change to the replica after the validator is made has it copy the schema.
        if payload.refersToElement || !counterSlot.found, unviewed.remove(segment) != nil { overlays[segment] = makeView(segment) }
        var draft = Draft(replica: replica, user: user, segment: segment, payload: payload, stamp: clock.tick(wallMilliseconds: wall),
                          knownEpoch: epochs[segment], lastCounter: counterSlot.found ? counters.value(at: counterSlot.index) : nil,
                          householdExists: householdKnown(segment.household, excludingCreation: creating),
                          createdLocally: locallyCreated.contains(segment.household))
        let validator = OperationValidator(schema: schema)
        let policy = self.policy, now = policyTime(wall: wall)
        let viewIndex = overlays.index(forKey: segment)
        let confirmedSlot = viewIndex == nil ? confirmed.slot(of: segment) : (index: 0, found: false)
        // The state is lent through `inout` (decision 45): read out of the dictionary or through
        // a pointer, it was copied for every write, a retain of each of its buffers. The closures
        // do not capture `self`: capturing it would copy the whole replica. A refusal is thrown,
        // not returned in a Result, which was copied on its way out of the closure. The payload
        // is moved, into the draft and from it into the op (`Draft.check`), never copied.
        let op: SyncOperation
        do {
            if let viewIndex {
                op = try lend(&overlays.values[viewIndex]) { (view) throws(RefusedDraft) in
                    try draft.check(on: view, validator: validator, policy: policy, now: now)
                }
            } else if confirmedSlot.found {
                op = try confirmed.modifyValue(at: confirmedSlot.index) { (state) throws(RefusedDraft) in
                    try draft.check(on: state, validator: validator, policy: policy, now: now)
                }
            } else {
                op = try draft.check(on: OperationValidator.noState, validator: validator, policy: policy, now: now)
            }
        } catch {
            throw refusal(error.reason, op: error.op)
        }
        counters.setValue(op.dot.counter, for: segment, at: counterSlot)
        // An absent epoch is epoch 0, the usual case: only erasures make a map entry worth its bytes.
        if op.epoch != 0 || epochs.contains(segment) { epochs[segment] = op.epoch }
        pending.append(op)
        // Changed in place; `overlays[segment] == nil` alone would copy the view out to test it.
        if let viewIndex {
            overlays.values[viewIndex].apply(op)
        } else {
            unviewed.insert(segment)  // built when first read
        }
        return op
    }

    /// What a local write knows before it sees the view.
    private struct Draft {
        var replica: ReplicaID
        var user: String
        var segment: SegmentKey
        var payload: OperationPayload
        var stamp: HLCTimestamp
        var knownEpoch: UInt32?
        var lastCounter: UInt64?
        var householdExists: Bool
        var createdLocally: Bool

        /// The op on top of `current` (the view; an empty state when the device
        /// has none); thrown with its reason when the shared validator refuses it.
        /// `mutating`: the payload moves into the op, and the draft is not used again.
        mutating func check(on current: SegmentState, validator: OperationValidator, policy: PolicyContext,
                            now: UInt64) throws(RefusedDraft) -> SyncOperation {
            let epoch = knownEpoch ?? current.epoch
            var context = current.context.vector
            let cloudMax = current.context.cloud.filter { $0.replica == replica }.map(\.counter).max() ?? 0
            let last = lastCounter ?? max(context[replica], cloudMax)
            context.raise(replica, to: last)  // every earlier own dot, accepted, pending or rejected
            var moved = OperationPayload.createHousehold
            swap(&moved, &payload)
            let op = SyncOperation(dot: Dot(replica: replica, counter: last + 1), segment: segment, epoch: epoch,
                                   stamp: stamp, author: user, context: context, payload: moved)
            let target = OperationValidator.Target(epoch: epoch, state: nil, householdExists: householdExists, createdLocally: createdLocally)
            if let reason = validator.validate(op, replica: replica, user: user, policy: policy, now: now, target: target, state: current) {
                throw RefusedDraft(op: op, reason: reason)
            }
            return op
        }
    }

    private struct RefusedDraft: Error {
        var op: SyncOperation
        var reason: RefusalReason
    }

    private func householdKnown(_ household: HouseholdID, excludingCreation: Bool) -> Bool {
        if excludingCreation { return confirmed[SegmentKey(household: household, purpose: .regie)] != nil }
        return true
    }

    private func refusal(_ reason: RefusalReason, op: SyncOperation) -> SyncCoreError {
        let purpose = op.segment.purpose
        let name = op.payload.targetName
        let target = name.map { "\($0) (purpose \(purpose))" } ?? "purpose \(purpose)"
        let message: String
        // Each says what happened, then what to do, without saying the first part twice.
        switch reason {
        case .purposeNotGranted:
            message = "Refused: \(name ?? "this") belongs to purpose \(purpose), which your role \(policy.role) is not granted. "
                + "Ask an admin for a grant if your work needs it."
        case .readOnly:
            message = "Refused: you may read purpose \(purpose) but not write it\(name.map { " (\($0))" } ?? ""). Ask an admin for a write grant."
        case .notAssigned:
            message = "Refused: you are not assigned to household \(op.segment.household) (writing \(target)). Ask a regisseur or admin to assign you."
        case .unknownField:
            message = "Refused: \(target) is not in the schema. \(reason.advice)"
        case .invalid:
            message = "The value for \(target) is not valid\(typeHint(op)). Nothing was queued."
        default:
            message = "Refused (\(reason)): \(target). \(reason.advice)"
        }
        return SyncCoreError(.refused, message, refusal: reason)
    }

    private func typeHint(_ op: SyncOperation) -> String {
        guard case .set(let name, let value, _) = op.payload, let field = schema.field(name),
              let problem = schema.typeProblem(value, for: field) else { return "" }
        return ": \(problem)"
    }

    /// Drops a rejected op the user has seen. Dots repeat across segments, so
    /// the household (and purpose) narrow it down; returns how many matched
    /// (nothing is dropped unless exactly one did).
    @discardableResult
    public mutating func discardRejected(_ dot: Dot, household: HouseholdID? = nil, purpose: Purpose? = nil) -> Int {
        let matches = rejected.indices.filter { index in
            let op = rejected[index].op
            return op.dot == dot && (household == nil || op.segment.household == household) && (purpose == nil || op.segment.purpose == purpose)
        }
        if matches.count == 1 { rejected.remove(at: matches[0]) }
        return matches.count
    }

    // MARK: Local read audit

    /// Queues an audit event for a local read of household data (DESIGN §7).
    public mutating func recordRead(household: HouseholdID, purpose: Purpose?, action: String, count: Int, wall: UInt64) {
        lastAuditSeq += 1
        let event = AuditEvent(deviceSeq: lastAuditSeq, prevHash: lastAuditHash, household: household, purpose: purpose,
                               action: action, at: wall, count: count)
        lastAuditHash = event.chainHash
        auditQueue.append(event)
    }
}

private extension SegmentState {
    /// Whether `dot` names a field value, a goal or another log's entry here: an ID a worker may
    /// mistake for a log entry's (`appendLog(correctionOf:)` names the mistake).
    func holdsOtherThanLogEntry(_ dot: Dot, in log: String) -> Bool {
        fields.contains { _, register in register.values.contains { $0.dot == dot } }
            || collections.contains { _, collection in collection[dot] != nil }
            || logs.contains { name, entries in name != log && entries[dot: dot] != nil }
    }
}

/// A complete sync server held in memory: the reference the SQLite server is
/// tested against, and the in-process server of `fieldbench replay` (DESIGN
/// §9). It runs the same PushProcessor and PullBuilder as `fieldsyncd`.
public struct InMemorySyncServer: Sendable {
    public var schema: Schema
    /// The segments, each in a slot of `store` found through `slots`, so that
    /// reading a segment's epoch or sequence reads it in place, where a
    /// dictionary's getter (or an optional's) would copy the whole segment out,
    /// retaining each of its dozen buffers. A slot is empty while a push holds
    /// its segment, after an erasure until new work arrives, and when only
    /// refused ops were ever recorded for it.
    private var store: [Slot] = []
    private var slots: [SegmentKey: Int] = [:]
    /// Each household's slots, in purpose order (so segments list in key order).
    private var slotsByHousehold: [HouseholdID: [Int]] = [:]

    private struct Slot: Sendable {
        var segment: ServerSegment
        var isEmpty = false
        /// Kept beside the segment, not in a map of their own: a push reads a
        /// segment and its verdicts together, and a second lookup by key was a
        /// second cold hash-table probe for every segment a push touched.
        var verdicts = VerdictList()
        /// The reasons of the segment's refused ops (few: a verdict is kept as
        /// its fingerprint alone, a reason only for a refusal).
        var refusals: [VerdictKey: RefusalReason] = [:]
    }
    public private(set) var epochs: [SegmentKey: UInt32] = [:]
    public private(set) var households: Set<HouseholdID> = []
    public private(set) var seq: UInt64 = 0
    /// Policy context per user name; assignments are kept here.
    public var policies: [String: PolicyContext] = [:]
    public var maxBody = 8 << 20
    // The verdict of every op is in its segment's slot (`Slot.verdicts`). The
    // replay's server holds one per op (≈ 200 000 on the default trace), so a
    // verdict is kept as its 16-byte fingerprint inline, and a refusal reason
    // only for the few refused ops (`Slot.refusals`).
    /// The slot a push last loaded or recorded a verdict in: a push loads a
    /// segment, asks for its verdicts and records op after op of it, and this
    /// spares hashing its key for each. (Slots are never moved or dropped.)
    /// (Two plain fields: an optional tuple went through the generic value witnesses on every op.)
    private var lastSlotKey: SegmentKey?
    private var lastSlot = 0
    /// What each device held after its last pull (a guess the pull checks against the held digest).
    private var heldByReplica: [ReplicaID: [HeldSegment]] = [:]

    /// (epoch, dot), laid out in 16 bytes (a `Dot` inside would pad it to 24).
    struct VerdictKey: Hashable, Sendable {
        var counter: UInt64
        var replica: UInt32
        var epoch: UInt32

        init(epoch: UInt32, dot: Dot) {
            counter = dot.counter
            replica = dot.replica.rawValue
            self.epoch = epoch
        }
    }

    /// One segment's verdicts, in one run per (epoch, replica): a replica's
    /// counters in a segment rise one by one, so its next verdict is appended
    /// to its run. (One list sorted by key inserted mid-list, moving the
    /// other replicas' verdicts, whenever two replicas took turns.)
    struct VerdictList: Sendable {
        /// A counter and its op's fingerprint, 24 bytes.
        struct Entry: Sendable {
            var counter: UInt64
            var fingerprint: ContentHash128
        }

        struct Run: Sendable {
            var epoch: UInt32
            var replica: UInt32
            /// Sorted by counter.
            var entries: [Entry]
        }

        /// A segment is written by a few replicas: a short list, searched in order.
        private var runs: [Run] = []

        private func run(of key: VerdictKey) -> Int? {
            runs.firstIndex { $0.replica == key.replica && $0.epoch == key.epoch }
        }

        subscript(key: VerdictKey) -> ContentHash128? {
            guard let run = run(of: key) else { return nil }
            let entries = runs[run].entries
            let index = entries.sortedPosition(of: key.counter) { $0.counter }
            guard index < entries.count, entries[index].counter == key.counter else { return nil }
            return entries[index].fingerprint
        }

        /// Records a verdict: appended when its counter is its run's highest (a
        /// device's next counter usually is), else inserted in place or overwritten.
        mutating func record(_ key: VerdictKey, _ fingerprint: ContentHash128) {
            let entry = Entry(counter: key.counter, fingerprint: fingerprint)
            guard let run = run(of: key) else {
                runs.append(Run(epoch: key.epoch, replica: key.replica, entries: [entry]))
                return
            }
            let index = runs[run].entries.sortedPosition(of: key.counter) { $0.counter }
            if index < runs[run].entries.count, runs[run].entries[index].counter == key.counter {
                runs[run].entries[index].fingerprint = fingerprint
            } else {
                runs[run].entries.insertGrowingByAQuarter(entry, at: index)
            }
        }

        /// The highest counter of `replica` recorded at `epoch` (0: none).
        func highestCounter(of replica: ReplicaID, epoch: UInt32) -> UInt64 {
            guard let run = run(of: VerdictKey(epoch: epoch, dot: Dot(replica: replica, counter: 0))) else { return 0 }
            return runs[run].entries.last?.counter ?? 0
        }
    }

    public init(schema: Schema) { self.schema = schema }

    /// A segment as it stands, if it exists.
    public func segment(_ key: SegmentKey) -> ServerSegment? { slot(of: key).map { store[$0].segment } }

    /// Every segment that exists.
    public var allSegments: [ServerSegment] { store.filter { !$0.isEmpty }.map(\.segment) }

    /// The slot of a segment that exists.
    private func slot(of key: SegmentKey) -> Int? {
        guard let slot = slots[key], !store[slot].isEmpty else { return nil }
        return slot
    }

    /// Moves a segment out of its slot, leaving the slot empty.
    private mutating func take(_ slot: Int) -> ServerSegment {
        var taken = ServerSegment(key: store[slot].segment.state.key, epoch: 0)
        swap(&taken, &store[slot].segment)
        store[slot].isEmpty = true
        return taken
    }

    /// Registers a household as existing (for tests and traces that start with households).
    public mutating func addHousehold(_ household: HouseholdID) { households.insert(household) }

    /// One full sync exchange for an authenticated device.
    public mutating func sync(_ request: consuming SyncRequest, device: DeviceIdentity, now: UInt64) throws -> SyncResponse {
        var request = request
        let push = try self.push(&request, device: device, now: now)
        return try pull(request, device: device, push: push, now: now)
    }

    /// The push half: validate and merge the request's ops.
    /// `request` is only read (`inout` to lend its ops, see PushProcessor).
    public mutating func push(_ request: inout SyncRequest, device: DeviceIdentity, now: UInt64) throws -> PushResult {
        guard let policy = policies[device.user] else {
            throw SyncCoreError(.notFound, "Unknown user.")
        }
        let push = try PushProcessor.process(&request.ops, device: device, policy: policy, schema: schema, now: now,
                                             backend: &self)
        policies[device.user] = push.policy
        return push
    }

    /// The pull half: snapshots, purges and deltas, as a response.
    public mutating func pull(_ request: SyncRequest, device: DeviceIdentity, push: PushResult, now: UInt64) throws -> SyncResponse {
        let pull = try PullBuilder.build(request, device: device, policy: push.policy, schema: schema, now: now,
                                         push: push, backend: &self)
        if !pull.needHeld { heldByReplica[device.replica] = pull.heldAfter }
        var context = push.policy
        context.serverTime = now
        return SyncResponse(accepted: AcceptedRange.ranges(of: push.accepted), rejected: push.rejected,
                            deltas: pull.deltas, snapshots: pull.snapshots, purge: pull.purge,
                            policy: request.policyDigest == context.digest ? nil : context,
                            schema: schema.matches(request.schemaHash) ? nil : schema, cursor: pull.cursor,
                            more: pull.more, needHeld: pull.needHeld, stateCheck: pull.stateCheck,
                            auditAck: request.auditEvents.map(\.deviceSeq).max() ?? 0, serverTime: now, maxBody: maxBody,
                            epochs: pull.epochs)
    }

    /// Raises a segment's epoch and drops its state (an erasure).
    public mutating func erase(_ segment: SegmentKey) {
        let epoch = (epochs[segment] ?? 0) + 1
        epochs[segment] = epoch
        if let slot = slots[segment] {
            if !store[slot].isEmpty { _ = take(slot) }
            store[slot].verdicts = VerdictList()
            store[slot].refusals = [:]
        }
        seq += 1
    }
}

extension InMemorySyncServer: PushBackend {
    public func storedVerdict(for dot: Dot, segment: SegmentKey, epoch: UInt32) throws -> StoredVerdict? {
        let key = VerdictKey(epoch: epoch, dot: dot)
        guard let slot = verdictSlot(of: segment), let fingerprint = store[slot].verdicts[key] else { return nil }
        return StoredVerdict(fingerprint: fingerprint, rejection: store[slot].refusals[key])
    }

    /// The slot of a segment's verdicts, if it has one (its segment may not exist).
    private func verdictSlot(of segment: SegmentKey) -> Int? {
        if lastSlotKey == segment { return lastSlot }
        return slots[segment]
    }

    public func highestRecordedCounter(of replica: ReplicaID, segment: SegmentKey, epoch: UInt32) throws -> UInt64 {
        verdictSlot(of: segment).map { store[$0].verdicts.highestCounter(of: replica, epoch: epoch) } ?? 0
    }

    public func currentEpoch(of segment: SegmentKey) throws -> UInt32 { epochs[segment] ?? 0 }

    public func householdExists(_ household: HouseholdID) throws -> Bool { households.contains(household) }

    /// Whole segments: the push need not say which elements it touches or changes.
    public var storesElementsByKey: Bool { false }

    /// Takes the segment out of the store so the push mutates the only copy.
    public mutating func loadSegment(_ segment: SegmentKey, epoch: UInt32, elements: Set<ElementKey>) throws -> ServerSegment? {
        guard let slot = slot(of: segment) else { return nil }
        remember(segment, at: slot)
        guard store[slot].segment.state.epoch == epoch else { return nil }
        return take(slot)
    }

    public mutating func restore(_ segment: consuming ServerSegment) {
        fill(slots[segment.state.key]!, with: segment)
    }

    public mutating func record(_ op: SyncOperation, fingerprint: ContentHash128, rejection: RefusalReason?) throws -> UInt64 {
        seq += 1
        let key = VerdictKey(epoch: op.epoch, dot: op.dot)
        let slot = verdictSlot(of: op.segment) ?? makeSlot(op.segment)
        remember(op.segment, at: slot)
        store[slot].verdicts.record(key, fingerprint)
        if let rejection { store[slot].refusals[key] = rejection }
        return seq
    }

    public mutating func save(_ segment: consuming ServerSegment, changed: Set<ElementKey>, created: Bool) throws {
        let key = segment.state.key
        // The slot is one loadSegment emptied, one an erasure emptied, one holding only refused
        // ops' verdicts, or new.
        fill(slots[key] ?? makeSlot(key), with: segment)
    }

    private mutating func remember(_ segment: SegmentKey, at slot: Int) {
        if lastSlotKey != segment { lastSlotKey = segment }
        lastSlot = slot
    }

    /// Puts a segment in its slot, beside the slot's verdicts.
    private mutating func fill(_ slot: Int, with segment: consuming ServerSegment) {
        var taken = segment
        swap(&store[slot].segment, &taken)  // moved in: an assignment copied it (every buffer retained)
        store[slot].isEmpty = false
    }

    /// A new, empty slot for a segment, listed with its household's.
    private mutating func makeSlot(_ key: SegmentKey) -> Int {
        let slot = store.count
        slots[key] = slot
        store.append(Slot(segment: ServerSegment(key: key, epoch: 0), isEmpty: true))
        var household = slotsByHousehold[key.household] ?? []
        household.insertMoving(slot, at: household.firstIndex { key.purpose < store[$0].segment.state.key.purpose } ?? household.count)
        slotsByHousehold[key.household] = household
        return slot
    }

    public mutating func householdCreated(_ household: HouseholdID, by op: SyncOperation, policy: PolicyContext) throws -> PolicyContext {
        households.insert(household)
        var updated = policy
        if !updated.assignments.contains(where: { $0.household == household }) {
            updated.assignments.append(Assignment(household: household))
        }
        return updated
    }
}

extension InMemorySyncServer: PullBackend {
    public func recordedHeld(by replica: ReplicaID) throws -> [HeldSegment]? { heldByReplica[replica] }

    public func existingSegments(of households: [HouseholdID]) throws -> [HeldSegment] {
        var result: [HeldSegment] = []
        for household in households {
            for slot in slotsByHousehold[household] ?? [] where !store[slot].isEmpty {
                result.append(HeldSegment(segment: store[slot].segment.state.key, epoch: store[slot].segment.state.epoch))
            }
        }
        return result
    }

    public func currentEpoch(of segment: SegmentKey) throws -> UInt32? {
        if let epoch = epochs[segment] { return epoch }
        return slot(of: segment).map { store[$0].segment.state.epoch }
    }

    public func changedSegments(since seq: UInt64, after resumeAfter: SegmentKey?, among: [SegmentKey]) throws -> [SegmentKey] {
        among.filter { key in
            guard let slot = slot(of: key) else { return false }
            return store[slot].segment.lastSeq > seq && (resumeAfter.map { key > $0 } ?? true)
        }
    }

    public mutating func delta(of segment: SegmentKey, for replica: ReplicaID, since cursor: UInt64) throws -> SegmentPatch? {
        lendSegment(segment) { $0.delta(for: replica, since: cursor) } ?? nil
    }

    public mutating func snapshot(of segment: SegmentKey) throws -> SegmentPatch? {
        lendSegment(segment) { SegmentPatch(snapshotOf: $0.state) }
    }

    public mutating func stateHash(of segment: SegmentKey) throws -> SegmentHash? {
        lendSegment(segment) { SegmentHash(segment: segment, epoch: $0.state.epoch, word: $0.state.stateHashWord()) }
    }

    /// A segment that exists, lent in place to `body`, which only reads it (see PullBackend).
    private mutating func lendSegment<Result>(_ key: SegmentKey, _ body: (inout ServerSegment) -> Result) -> Result? {
        guard let slot = slot(of: key) else { return nil }
        return body(&store[slot].segment)
    }

    public func maxSeq() throws -> UInt64 { seq }

    public func segmentsCreated(after seq: UInt64, of households: [HouseholdID]) throws -> Set<SegmentKey> {
        var result = Set<SegmentKey>()
        for household in households {
            for slot in slotsByHousehold[household] ?? [] where !store[slot].isEmpty && store[slot].segment.createdSeq > seq {
                result.insert(store[slot].segment.state.key)
            }
        }
        return result
    }

    public func raisedEpochs(of households: [HouseholdID]) throws -> [HeldSegment] {
        guard !epochs.isEmpty else { return [] }
        let wanted = Set(households)
        return epochs.filter { wanted.contains($0.key.household) }.map { HeldSegment(segment: $0.key, epoch: $0.value) }.sorted()
    }
}

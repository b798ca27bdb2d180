/// The stored verdict of an op the server has seen (DESIGN §5: a re-pushed
/// dot gets the verdict stored the first time).
public struct StoredVerdict: Hashable, Sendable {
    public var fingerprint: ContentHash128
    /// Nil when the op was accepted.
    public var rejection: RefusalReason?
    public init(fingerprint: ContentHash128, rejection: RefusalReason?) {
        self.fingerprint = fingerprint
        self.rejection = rejection
    }
}

/// The storage the push half of a sync needs, inside one write transaction.
public protocol PushBackend {
    func storedVerdict(for dot: Dot, segment: SegmentKey, epoch: UInt32) throws -> StoredVerdict?
    /// The highest counter of `replica` with a stored verdict in the segment
    /// at that epoch (0: none). A device's new ops come above it, so the push
    /// looks their verdicts up only at or below it: once per segment instead
    /// of once per op. (`UInt64.max` always looks up.)
    func highestRecordedCounter(of replica: ReplicaID, segment: SegmentKey, epoch: UInt32) throws -> UInt64
    /// The segment's current epoch (0 if it was never erased). Asked once per
    /// segment of a push, just before `loadSegment`: a store may read both at once.
    mutating func currentEpoch(of segment: SegmentKey) throws -> UInt32
    func householdExists(_ household: HouseholdID) throws -> Bool
    /// Loads a segment for this push; the processor owns the returned copy
    /// and hands it back through `save` (changed) or `restore` (unchanged).
    /// `elements` names the elements the push's ops touch or refer to: a
    /// store may load only those (the digest stays right, see ServerSegment.restore).
    mutating func loadSegment(_ segment: SegmentKey, epoch: UInt32, elements: Set<ElementKey>) throws -> ServerSegment?
    /// Whether the store keeps segments element by element: then `loadSegment`
    /// is told which elements the push touches and `save` which it changed.
    /// A store of whole segments says no, and the push works neither out.
    var storesElementsByKey: Bool { get }
    /// Takes back a loaded segment that the push did not change.
    mutating func restore(_ segment: consuming ServerSegment)
    /// Stores the op with its verdict (quarantining a rejection) and returns
    /// its sequence number, assigned in this transaction.
    mutating func record(_ op: SyncOperation, fingerprint: ContentHash128, rejection: RefusalReason?) throws -> UInt64
    /// Stores the changed elements of a segment at their new sequence numbers
    /// (`changed` is empty unless `storesElementsByKey`).
    mutating func save(_ segment: consuming ServerSegment, changed: Set<ElementKey>, created: Bool) throws
    /// A household was created: assign its creator and return the refreshed policy.
    mutating func householdCreated(_ household: HouseholdID, by op: SyncOperation, policy: PolicyContext) throws -> PolicyContext
}

extension PushBackend {
    public func highestRecordedCounter(of replica: ReplicaID, segment: SegmentKey, epoch: UInt32) throws -> UInt64 { .max }
    public mutating func restore(_ segment: consuming ServerSegment) {}
    public var storesElementsByKey: Bool { true }
}

/// Who is pushing: the authenticated device.
public struct DeviceIdentity: Hashable, Sendable {
    public var replica: ReplicaID
    public var user: String
    public var deviceID: String
    public init(replica: ReplicaID, user: String, deviceID: String) {
        self.replica = replica
        self.user = user
        self.deviceID = deviceID
    }
}

/// What a push did.
public struct PushResult: Sendable {
    public var accepted: [(SegmentKey, Dot)] = []
    public var rejected: [RejectedOp] = []
    /// How many ops this push accepted (not counting re-pushes), for the metrics.
    public var newlyAcceptedCount = 0
    /// Why each op this push rejected (not re-pushes) was refused, for the metrics.
    public var newlyRejected: [RefusalReason] = []
    /// Segments that did not exist before this push, with their epochs: the device holds them now.
    /// (Only the epochs: keeping each changed segment here retained all of its buffers.)
    public var createdSegments: [SegmentKey: UInt32] = [:]
    /// The policy after the push (a createHousehold assigns its creator).
    public var policy: PolicyContext
    /// Counts the push's changes to `policy`, so answers worked out from an earlier one are not reused.
    var policyVersion = 0
    public init(policy: PolicyContext) { self.policy = policy }

    /// Adds a verdict to the answer (nil: accepted).
    mutating func report(_ verdict: RefusalReason?, segment: SegmentKey, epoch: UInt32, dot: Dot) {
        if let verdict {
            rejected.append(RejectedOp(segment: segment, epoch: epoch, dot: dot, reason: verdict))
        } else {
            accepted.append((segment, dot))
        }
    }
}

/// Validates and merges pushed ops one by one (DESIGN §5): look the dot up
/// first (idempotent re-push), then check with the shared validator, then
/// merge. A bad op is rejected alone; the rest of the batch lands.
public enum PushProcessor {
    /// Per-segment state of one push.
    private struct Work {
        var epoch: UInt32
        var segment: ServerSegment?
        var existedBefore: Bool
        /// Changed elements (kept only for a store of elements); nil while the segment is unchanged.
        var changed: Set<ElementKey>?
        /// The pushing device's highest counter with a stored verdict at `epoch`; nil until asked.
        var recordedUpTo: UInt64?
        /// The policy's answer to a write here (nil inside: allowed), for `policyVersion`.
        var writeRefusal: (policyVersion: Int, refusal: RefusalReason?)?
    }

    /// `ops` is only read: it is `inout` so that each op is lent where it
    /// lies, not copied for its turn (decision 45).
    public static func process<Backend: PushBackend>(_ ops: inout [SyncOperation], device: DeviceIdentity, policy: PolicyContext,
                                                     schema: Schema, now: UInt64, backend: inout Backend) throws -> PushResult {
        var result = PushResult(policy: policy)
        result.accepted.reserveCapacity(ops.count)  // usually every op is
        // Each segment's work, in the order first met, changed in place (a dictionary of
        // works copied each one out and back per run); the index finds a segment met again.
        var works: [(key: SegmentKey, work: Work)] = []
        var workIndex: [SegmentKey: Int] = [:]
        var households: [HouseholdID: Bool] = [:]
        let validator = OperationValidator(schema: schema)
        let touched = backend.storesElementsByKey ? touchedElements(of: ops) : [:]
        // Grown instead, `works` copied every work, loaded segment and all, and the index rehashed.
        let runs = segmentRuns(in: ops)
        works.reserveCapacity(runs)
        workIndex.reserveCapacity(runs)

        // Ops come in runs of one segment: look the segment's work up once per run.
        var start = 0
        while start < ops.count {
            let key = ops[start].segment
            var end = start + 1
            while end < ops.count, ops[end].segment == key { end += 1 }
            let slot: Int
            if let known = workIndex[key] {
                slot = known
            } else {
                let epoch = try backend.currentEpoch(of: key)
                let loaded = try backend.loadSegment(key, epoch: epoch, elements: touched[key] ?? [])
                slot = works.count
                workIndex[key] = slot
                works.append((key, Work(epoch: epoch, segment: loaded, existedBefore: loaded != nil, changed: nil)))
            }
            for index in start..<end {
                try lend(&ops[index]) { op in
                    let verdict = try process(op, work: &works[slot].work, households: &households, device: device, validator: validator,
                                              now: now, result: &result, backend: &backend)
                    // Drafts share only an acceptance: when the write that absorbed them is refused
                    // they get no verdict, stay pending on the device and come whole next round,
                    // where each is judged on its own (its value may be fine where the last was not).
                    // The form is checked here too: a re-pushed op takes its stored verdict unvalidated.
                    if verdict == nil, let absorbs = op.absorbs, OperationValidator.absorbsAreWellFormed(op, replica: device.replica) {
                        try absorb(absorbs, into: op, work: &works[slot].work, result: &result, backend: &backend)
                    }
                }
            }
            start = end
        }

        // Each segment is moved out of its work, not copied (a copy retains each of its buffers).
        for index in works.indices {
            guard let segment = works[index].work.segment.take() else { continue }
            guard let elements = works[index].work.changed else {
                backend.restore(segment)
                continue
            }
            let created = !works[index].work.existedBefore
            if created { result.createdSegments[works[index].key] = segment.state.epoch }
            try backend.save(segment, changed: elements, created: created)  // its last use: moved, not copied
        }
        return result
    }

    /// How many runs of one segment `ops` has: at least as many as the segments it touches.
    private static func segmentRuns(in ops: [SyncOperation]) -> Int {
        ops.withUnsafeBufferPointer { ops in
            var runs = 0
            for index in ops.indices where index == 0 || ops[index].segment != ops[index - 1].segment { runs += 1 }
            return runs
        }
    }

    /// The elements each segment's ops write or refer to.
    private static func touchedElements(of ops: [SyncOperation]) -> [SegmentKey: Set<ElementKey>] {
        var touched: [SegmentKey: Set<ElementKey>] = [:]
        for op in ops {
            touched[op.segment, default: []].insert(SegmentState.elementKey(of: op))
            if case .append(let log, let body) = op.payload, let original = body.correctionOf {
                touched[op.segment, default: []].insert(.logEntry(log: log, dot: original))
            }
        }
        return touched
    }

    /// Processes one op and returns its verdict (nil: accepted).
    private static func process<Backend: PushBackend>(_ op: SyncOperation, work: inout Work, households: inout [HouseholdID: Bool],
                                                      device: DeviceIdentity, validator: OperationValidator, now: UInt64,
                                                      result: inout PushResult, backend: inout Backend) throws -> RefusalReason? {
        // Another replica's dot is refused before anything is looked up or stored: recording it
        // (or marking it seen) would make that device's own write of the dot `dotReuse`.
        guard op.dot.replica == device.replica else {
            result.report(.invalid, segment: op.segment, epoch: op.epoch, dot: op.dot)
            result.newlyRejected.append(.invalid)  // counted in the metrics
            return .invalid
        }
        let fingerprint = Self.fingerprint(op)
        // A counter above the device's highest recorded one is new: no verdict to look up.
        var mayBeRecorded = true
        if op.epoch == work.epoch {
            if work.recordedUpTo == nil {
                work.recordedUpTo = try backend.highestRecordedCounter(of: device.replica, segment: op.segment, epoch: op.epoch)
            }
            mayBeRecorded = op.dot.counter <= work.recordedUpTo!
        }
        if mayBeRecorded, let stored = try backend.storedVerdict(for: op.dot, segment: op.segment, epoch: op.epoch) {
            // An absorbed dot's content never came, so a draft of the same field matches (sent whole
            // in a later chunk). Anything else is not that draft: a device restored from a backup
            // that gave the dot to another write, which would be "accepted" and never stored.
            let matches = stored.fingerprint == fingerprint || Self.isAbsorbedDraft(op, stored: stored.fingerprint)
            let verdict = matches ? stored.rejection : .dotReuse
            result.report(verdict, segment: op.segment, epoch: op.epoch, dot: op.dot)
            return verdict
        }
        let exists: Bool
        if work.segment != nil {
            exists = true  // a segment is only ever stored for a household that exists (asked first: no lookup)
        } else if let known = households[op.segment.household] {
            exists = known
        } else {
            exists = try backend.householdExists(op.segment.household)
            households[op.segment.household] = exists
        }
        let verdict: RefusalReason?
        // The state is lent, not copied into the target: a copy retains each of its buffers.
        let target = OperationValidator.Target(epoch: work.epoch, state: nil, householdExists: exists)
        // The policy's answer is the same for every op of the segment (but a createHousehold)
        // until the push changes the policy: worked out once. Worked out before the other
        // checks, which come first in the verdict: it is pure, and asked inside the validator's
        // closure it copied the whole policy (every assignment) out of `result` for each op.
        let writeRefusal: RefusalReason?
        if case .createHousehold = op.payload {
            writeRefusal = validator.writeRefusal(op, policy: result.policy, now: now, createdLocally: false)
        } else if let cached = work.writeRefusal, cached.policyVersion == result.policyVersion {
            writeRefusal = cached.refusal
        } else {
            writeRefusal = validator.writeRefusal(op, policy: result.policy, now: now, createdLocally: false)
            work.writeRefusal = (result.policyVersion, writeRefusal)
        }
        if work.segment != nil {
            verdict = validator.validate(op, replica: device.replica, user: device.user, target: target, state: work.segment!.state,
                                         writeRefusal: { writeRefusal })
        } else {
            verdict = validator.validate(op, replica: device.replica, user: device.user, target: target, state: OperationValidator.noState,
                                         writeRefusal: { writeRefusal })
        }
        let seq = try backend.record(op, fingerprint: fingerprint, rejection: verdict)
        if op.epoch == work.epoch, let upTo = work.recordedUpTo { work.recordedUpTo = max(upTo, op.dot.counter) }
        if let verdict {
            // Recorded as seen only in its own epoch: an old-epoch dot is not
            // part of the new epoch, where the same dot may still be written.
            if work.segment != nil, op.epoch == work.epoch {
                work.segment!.reject(op.dot, seq: seq)
                if work.changed == nil { work.changed = [] }
            }
            result.report(verdict, segment: op.segment, epoch: op.epoch, dot: op.dot)
            result.newlyRejected.append(verdict)
            return verdict
        }
        if work.segment == nil { work.segment = ServerSegment(key: op.segment, epoch: work.epoch) }
        if work.changed == nil { work.changed = [] }
        if let element = work.segment!.accept(op, seq: seq), backend.storesElementsByKey { work.changed!.insert(element) }
        result.report(nil, segment: op.segment, epoch: op.epoch, dot: op.dot)
        result.newlyAcceptedCount += 1
        if case .createHousehold = op.payload {
            households[op.segment.household] = true
            result.policy = try backend.householdCreated(op.segment.household, by: op, policy: result.policy)
            result.policyVersion += 1
        }
        return nil
    }

    /// The author's earlier writes that the accepted `op` superseded before
    /// they were sent (SyncOperation.absorbs): recorded as seen and empty,
    /// which is what merging them would have left.
    private static func absorb<Backend: PushBackend>(_ counters: [UInt64], into op: SyncOperation,
                                                     work: inout Work, result: inout PushResult, backend: inout Backend) throws {
        for counter in counters {
            let dot = Dot(replica: op.dot.replica, counter: counter)
            if let stored = try backend.storedVerdict(for: dot, segment: op.segment, epoch: op.epoch) {
                // Pushed before (whole, or absorbed by another write): its verdict stands.
                result.report(stored.rejection, segment: op.segment, epoch: op.epoch, dot: dot)
                continue
            }
            var absorbed = op
            absorbed.dot = dot
            absorbed.absorbs = nil
            let seq = try backend.record(absorbed, fingerprint: Self.absorbedFingerprint(of: absorbed), rejection: nil)
            if work.segment != nil, op.epoch == work.epoch {
                work.segment!.reject(dot, seq: seq)
                if work.changed == nil { work.changed = [] }
            }
            result.report(nil, segment: op.segment, epoch: op.epoch, dot: dot)
        }
    }

    /// The fingerprint stored for an absorbed dot, whose own content the server never saw: the field
    /// its absorbing write set (absorbed drafts are earlier writes of that field), and that write's
    /// stamp (drafts were stamped before it, on the same clock).
    static func absorbedFingerprint(of write: SyncOperation) -> ContentHash128 {
        ContentHash128(high: fieldHash(of: write), low: write.stamp.rawValue)
    }

    private static func fieldHash(of write: SyncOperation) -> UInt64 {
        var hasher = ElementHasher()
        hasher.add("absorbed draft")
        hasher.add(write.payload.targetName ?? "")
        return hasher.result.high
    }

    /// What stores written before the field was kept recorded for every absorbed dot.
    static let fieldlessAbsorbedFingerprint = ContentHash128(high: 0xABAB_ABAB_ABAB_ABAB, low: 0xABAB_ABAB_ABAB_ABAB)

    /// Whether `op` may be the draft whose dot was recorded as absorbed with `stored`: a write of the
    /// same field, stamped before the write that absorbed it. A device restored from a backup that
    /// writes the field again under the dot stamps it later, from its wall clock.
    static func isAbsorbedDraft(_ op: SyncOperation, stored: ContentHash128) -> Bool {
        guard case .set = op.payload else { return false }
        if stored == fieldlessAbsorbedFingerprint { return true }
        return stored.high == fieldHash(of: op) && op.stamp.rawValue < stored.low
    }

    /// A digest of an op's full content: the same dot with other content is `dotReuse`.
    public static func fingerprint(_ op: SyncOperation) -> ContentHash128 {
        ElementHasher.fingerprint(of: op)
    }
}

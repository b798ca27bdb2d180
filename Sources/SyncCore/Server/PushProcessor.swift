/// The stored verdict of an op the server has seen (DESIGN §5: a re-pushed
/// dot gets the verdict stored the first time).
public struct StoredVerdict: Hashable, Sendable {
    public var fingerprint: Digest
    /// Nil when the op was accepted.
    public var rejection: RefusalReason?
    public init(fingerprint: Digest, rejection: RefusalReason?) {
        self.fingerprint = fingerprint
        self.rejection = rejection
    }
}

/// The storage the push half of a sync needs, inside one write transaction.
public protocol PushBackend {
    func storedVerdict(for dot: Dot, segment: SegmentKey, epoch: UInt32) throws -> StoredVerdict?
    /// The segment's current epoch (0 if it was never erased).
    func currentEpoch(of segment: SegmentKey) throws -> UInt32
    func householdExists(_ household: HouseholdID) throws -> Bool
    /// Loads a segment for this push; the processor owns the returned copy
    /// and hands it back through `save` (changed) or `restore` (unchanged).
    /// `elements` names the elements the push's ops touch or refer to: a
    /// store may load only those (the digest stays right, see ServerSegment.restore).
    mutating func loadSegment(_ segment: SegmentKey, epoch: UInt32, elements: Set<ElementKey>) throws -> ServerSegment?
    /// Takes back a loaded segment that the push did not change.
    mutating func restore(_ segment: ServerSegment)
    /// Stores the op with its verdict (quarantining a rejection) and returns
    /// its sequence number, assigned in this transaction.
    mutating func record(_ op: SyncOperation, fingerprint: Digest, rejection: RefusalReason?) throws -> UInt64
    /// Stores the changed elements of a segment at their new sequence numbers.
    mutating func save(_ segment: ServerSegment, changed: Set<ElementKey>, created: Bool) throws
    /// A household was created: assign its creator and return the refreshed policy.
    mutating func householdCreated(_ household: HouseholdID, by op: SyncOperation, policy: PolicyContext) throws -> PolicyContext
}

extension PushBackend {
    public mutating func restore(_ segment: ServerSegment) {}
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
    /// Ops accepted by this push (not re-pushes), for audit rows.
    public var newlyAccepted: [SyncOperation] = []
    /// Ops rejected by this push (not re-pushes).
    public var newlyRejected: [(SyncOperation, RefusalReason)] = []
    /// Segments that did not exist before this push: the device holds them now.
    public var createdSegments: Set<SegmentKey> = []
    /// Segments this push changed, in their new state.
    public var changedSegments: [SegmentKey: ServerSegment] = [:]
    /// The policy after the push (a createHousehold assigns its creator).
    public var policy: PolicyContext
    public init(policy: PolicyContext) { self.policy = policy }
}

/// Validates and merges pushed ops one by one (DESIGN §5): look the dot up
/// first (idempotent re-push), then check with the shared validator, then
/// merge. A bad op is rejected alone; the rest of the batch lands.
public enum PushProcessor {
    public static func process<Backend: PushBackend>(_ ops: [SyncOperation], device: DeviceIdentity, policy: PolicyContext,
                                                     schema: Schema, now: UInt64, backend: inout Backend) throws -> PushResult {
        var result = PushResult(policy: policy)
        var segments: [SegmentKey: ServerSegment] = [:]
        var changed: [SegmentKey: Set<ElementKey>] = [:]
        var epochs: [SegmentKey: UInt32] = [:]
        var existedBefore: [SegmentKey: Bool] = [:]
        var createdHouseholds = Set<HouseholdID>()
        let validator = OperationValidator(schema: schema)
        var touched: [SegmentKey: Set<ElementKey>] = [:]
        for op in ops {
            touched[op.segment, default: []].insert(SegmentState.elementKey(of: op))
            if case .append(let log, let body) = op.payload, let original = body.correctionOf {
                touched[op.segment, default: []].insert(.logEntry(log: log, dot: original))
            }
        }

        for op in ops {
            let fingerprint = Self.fingerprint(op)
            if let stored = try backend.storedVerdict(for: op.dot, segment: op.segment, epoch: op.epoch) {
                if stored.fingerprint != fingerprint {
                    result.rejected.append(RejectedOp(segment: op.segment, dot: op.dot, reason: .dotReuse))
                } else if let reason = stored.rejection {
                    result.rejected.append(RejectedOp(segment: op.segment, dot: op.dot, reason: reason))
                } else {
                    result.accepted.append((op.segment, op.dot))
                }
                continue
            }
            let epoch: UInt32
            if let known = epochs[op.segment] {
                epoch = known
            } else {
                epoch = try backend.currentEpoch(of: op.segment)
                epochs[op.segment] = epoch
            }
            if segments[op.segment] == nil, existedBefore[op.segment] == nil {
                let loaded = try backend.loadSegment(op.segment, epoch: epoch, elements: touched[op.segment] ?? [])
                existedBefore[op.segment] = loaded != nil
                if let loaded { segments[op.segment] = loaded }
            }
            let exists: Bool
            if createdHouseholds.contains(op.segment.household) {
                exists = true
            } else {
                exists = try backend.householdExists(op.segment.household)
            }
            let verdict: RefusalReason?
            do {
                // Scoped: the target's reference to the state must end before it is mutated in place.
                let target = OperationValidator.Target(epoch: epoch, state: segments[op.segment]?.state, householdExists: exists)
                verdict = validator.validate(op, replica: device.replica, user: device.user, policy: result.policy,
                                             now: now, target: target)
            }
            let seq = try backend.record(op, fingerprint: fingerprint, rejection: verdict)
            if let verdict {
                if segments[op.segment] != nil {
                    segments[op.segment]!.reject(op.dot, seq: seq)
                    changed[op.segment, default: []].formUnion([])
                }
                result.rejected.append(RejectedOp(segment: op.segment, dot: op.dot, reason: verdict))
                result.newlyRejected.append((op, verdict))
                continue
            }
            if segments[op.segment] == nil { segments[op.segment] = ServerSegment(key: op.segment, epoch: epoch) }
            if let element = segments[op.segment]!.accept(op, seq: seq) {
                changed[op.segment, default: []].insert(element)
            } else {
                changed[op.segment, default: []].formUnion([])
            }
            result.accepted.append((op.segment, op.dot))
            result.newlyAccepted.append(op)
            if case .createHousehold = op.payload {
                createdHouseholds.insert(op.segment.household)
                result.policy = try backend.householdCreated(op.segment.household, by: op, policy: result.policy)
            }
        }
        for (key, segment) in segments {
            guard let elements = changed[key] else {
                backend.restore(segment)
                continue
            }
            let created = existedBefore[key] == false
            try backend.save(segment, changed: elements, created: created)
            if created { result.createdSegments.insert(key) }
            result.changedSegments[key] = segment
        }
        return result
    }

    /// A digest of an op's full content: the same dot with other content is `dotReuse`.
    public static func fingerprint(_ op: SyncOperation) -> Digest {
        Digest(ElementHasher.fingerprint(of: op).bytes)
    }
}

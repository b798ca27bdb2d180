/// Checks one op before it may be merged: identity, epoch, schema, policy and
/// references, in that order, so the reason code is the most specific one.
/// The server runs it on every pushed op; the device runs the same checks on
/// every local write before it is queued (DESIGN §4).
public struct OperationValidator: Sendable {
    public var schema: Schema

    public init(schema: Schema) { self.schema = schema }

    /// What the validator needs to know about the target segment.
    public struct Target {
        /// The segment's current epoch (0 if it does not exist yet).
        public var epoch: UInt32
        /// The segment's state at that epoch, nil if it has none yet.
        public var state: SegmentState?
        /// Whether the household exists at all (a createHousehold op has landed).
        public var householdExists: Bool
        /// The household was created on this device and the server has not answered.
        public var createdLocally: Bool

        public init(epoch: UInt32, state: SegmentState?, householdExists: Bool, createdLocally: Bool = false) {
            self.epoch = epoch
            self.state = state
            self.householdExists = householdExists
            self.createdLocally = createdLocally
        }
    }

    /// Returns nil when the op may be merged, else the reason to reject it.
    public func validate(_ op: SyncOperation, replica: ReplicaID, user: String, policy: PolicyContext, now: UInt64,
                         target: Target) -> RefusalReason? {
        validate(op, replica: replica, user: user, policy: policy, now: now, target: target, state: target.state ?? Self.noState)
    }

    /// What the checks are given for a segment with no state yet: an empty
    /// state, which every check reads as it would read none (the checks read
    /// neither its key nor its epoch). One for all: made for each op, it cost
    /// a push as much as the copy it spares.
    static let noState = SegmentState(key: SegmentKey(household: HouseholdID(high: 0, low: 0), purpose: .regie), epoch: 0)

    /// The same, with the segment's state passed apart from `target` (whose
    /// `state` is then ignored), so a caller that holds it in a larger value
    /// lends it instead of copying it into a Target for every op. A segment
    /// with no state yet is passed as an empty one, which every check reads
    /// as it would read none: not an optional, since wrapping a lent state
    /// in one copies it (a retain of each of its buffers, for every write).
    func validate(_ op: SyncOperation, replica: ReplicaID, user: String, policy: PolicyContext, now: UInt64,
                  target: Target, state: SegmentState) -> RefusalReason? {
        validate(op, replica: replica, user: user, target: target, state: state) {
            writeRefusal(op, policy: policy, now: now, createdLocally: target.createdLocally)
        }
    }

    /// The same, with the policy's answer asked of `writeRefusal` (only when
    /// the op's shape and schema pass, since those reasons come first): a
    /// caller may hand in an answer worked out before, as PushProcessor does
    /// once per segment and policy version.
    func validate(_ op: SyncOperation, replica: ReplicaID, user: String, target: Target, state: SegmentState,
                  writeRefusal: () -> RefusalReason?) -> RefusalReason? {
        if let reason = validateShape(op, replica: replica, user: user, target: target, state: state) { return reason }
        if let reason = validateSchema(op) { return reason }
        if let reason = writeRefusal() { return reason }
        return validateReferences(op, target: target, state: state)
    }

    /// Why the policy refuses this write to the op's segment (nil: it may).
    /// The same for every op of a segment but a createHousehold.
    func writeRefusal(_ op: SyncOperation, policy: PolicyContext, now: UInt64, createdLocally: Bool) -> RefusalReason? {
        let createdHere: Bool
        if case .createHousehold = op.payload { createdHere = true } else { createdHere = createdLocally }
        return PolicyEvaluator.check(.write, segment: op.segment, context: policy, now: now, createdLocally: createdHere,
                                     serverOnly: schema.isServerOnly(op.segment.purpose)).refusal
    }

    func validateShape(_ op: SyncOperation, replica: ReplicaID, user: String, target: Target,
                       state: SegmentState) -> RefusalReason? {
        guard op.dot.replica == replica, op.author == user else { return .invalid }
        guard !op.context.contains(op.dot), op.context[replica] < op.dot.counter, op.dot.counter <= Dot.maxCounter else { return .invalid }
        if op.absorbs != nil, !Self.absorbsAreWellFormed(op, replica: replica) { return .invalid }
        if op.epoch < target.epoch { return .erased }
        guard op.epoch == target.epoch else { return .invalid }
        // A dot the segment has seen without a stored verdict for it: merging
        // would be a no-op, so accepting it would lose the write.
        if state.context.contains(op.dot) { return .dotReuse }
        // The carried context may only claim dots the segment has seen, plus
        // the author's own earlier dots (pushed in order before this one).
        for entry in op.context.entries {
            guard entry.counter <= Dot.maxCounter else { return .invalid }
            guard entry.replica != replica else { continue }
            let top = state.context.vector[entry.replica]
            if entry.counter > top {
                let missing = (top + 1)...entry.counter
                if missing.count > 64 || !missing.allSatisfy({ state.context.contains(Dot(replica: entry.replica, counter: $0)) }) {
                    return .invalid
                }
            }
        }
        return nil
    }

    /// The most drafts one write may absorb (the client sends any further drafts whole).
    public static let maxAbsorbed = 1024

    /// Only a field write by `replica` absorbs, and only that replica's own
    /// earlier dots it had seen: at most `maxAbsorbed`, each once, each below
    /// the write's own counter.
    public static func absorbsAreWellFormed(_ op: SyncOperation, replica: ReplicaID) -> Bool {
        guard let absorbs = op.absorbs else { return true }
        guard case .set = op.payload, op.dot.replica == replica, !absorbs.isEmpty, absorbs.count <= maxAbsorbed else { return false }
        guard absorbs.allSatisfy({ $0 > 0 && $0 < op.dot.counter && op.context.contains(Dot(replica: replica, counter: $0)) }) else {
            return false
        }
        return Set(absorbs).count == absorbs.count
    }

    /// Schema checks alone (names, purposes, types), for writes the server makes itself.
    public func validateSchema(_ op: SyncOperation) -> RefusalReason? {
        let purpose = op.segment.purpose
        guard schema.lists(purpose) else { return .unknownField }
        switch op.payload {
        case .createHousehold:
            return purpose == .regie ? nil : .invalid
        case .set(let name, let value, let resolves):
            guard let verdict = schema.checkWrite(of: name, purpose: purpose, value: value) else { return .unknownField }
            if verdict != nil { return verdict }
            if resolves.count > 1024 || !resolves.allSatisfy({ op.context.contains($0) }) { return .invalid }
            return nil
        case .append(let name, let body):
            return schema.withLog(name, purpose: purpose) { log -> RefusalReason? in
                if log.retired { return .fieldRetired }
                guard log.kinds.contains(body.kind), body.text.utf8.count <= 256 * 1024, !body.text.isEmpty,
                      body.occurredAt <= HLCTimestamp.maxMilliseconds else { return .invalid }
                return nil
            } ?? .unknownField
        case .insert(let name, let position, let text):
            return schema.withCollection(name, purpose: purpose) { collection -> RefusalReason? in
                if collection.retired { return .fieldRetired }
                guard !position.isEmpty, position.count <= 256, position.last != 0, text.utf8.count <= 64 * 1024 else { return .invalid }
                return nil
            } ?? .unknownField
        case .edit(let name, _, let field, let value):
            return schema.withCollection(name, purpose: purpose) { collection -> RefusalReason? in
                if collection.retired { return .fieldRetired }
                if field == .status, !collection.statuses.contains(value) { return .invalid }
                return value.utf8.count <= 64 * 1024 ? nil : .invalid
            } ?? .unknownField
        case .move(let name, _, let position):
            return schema.withCollection(name, purpose: purpose) { collection -> RefusalReason? in
                if collection.retired { return .fieldRetired }
                return !position.isEmpty && position.count <= 256 && position.last != 0 ? nil : .invalid
            } ?? .unknownField
        case .remove(let name, _):
            return schema.withCollection(name, purpose: purpose) { $0.retired ? .fieldRetired : nil } ?? .unknownField
        }
    }

    /// Why an op that refers to an item or entry cannot land on `state` (nil: it can): for a
    /// server that lands a quarantined op later (an admin's requeue).
    public func referenceRefusal(_ op: SyncOperation, householdExists: Bool, state: SegmentState?) -> RefusalReason? {
        validateReferences(op, target: Target(epoch: op.epoch, state: nil, householdExists: householdExists), state: state ?? Self.noState)
    }

    func validateReferences(_ op: SyncOperation, target: Target, state: SegmentState) -> RefusalReason? {
        switch op.payload {
        case .createHousehold:
            return target.householdExists ? .invalid : nil
        case .append(let name, let body):
            guard let original = body.correctionOf else { return nil }
            if state.logs.withValue(name, { $0.withEntry(original) { _ in true } }) == true { return nil }
            return state.context.contains(original) ? .dependsOnRejected : .invalid
        case .edit(let name, let item, _, _), .move(let name, let item, _), .remove(let name, let item):
            if state.collections.withValue(name, { $0.withItem(item) { $0.hasBasePosition } }) == true { return nil }
            // Seen but absent: the insert was rejected. Never seen: a forged reference.
            return state.context.contains(item) ? .dependsOnRejected : .invalid
        default:
            return nil
        }
    }
}

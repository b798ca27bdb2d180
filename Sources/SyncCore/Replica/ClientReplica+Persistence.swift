/// The replica in a storable form, so a client can keep it on disk (encrypted)
/// and restore it. Segment states use their canonical encoding; pending ops
/// the binary op form; the rest is a small Codable record.
extension ClientReplica {
    /// Everything but segment states and pending ops.
    public struct Metadata: Codable, Sendable, Hashable {
        public var replica: ReplicaID
        public var user: String
        public var policy: PolicyContext
        public var clock: HybridLogicalClock
        public var counters: [SegmentKey: UInt64]
        public var epochs: [SegmentKey: UInt32]
        public var rejected: [RejectedRecord]
        public var purgedRejectedCount: Int
        public var cursor: SyncCursor
        public var locallyCreated: Set<HouseholdID>
        public var lastServerTime: UInt64
        public var sendFullHeld: Bool
        public var clockSkewCount: Int
        public var auditQueue: [AuditEvent]
        public var lastAuditSeq: UInt64
        public var lastAuditHash: Digest
        /// Absent in stores written before it was kept.
        public var clockAheadOfServer: UInt64? = nil
        public var refreshing: Set<SegmentKey>? = nil
    }

    public var metadata: Metadata {
        Metadata(replica: replica, user: user, policy: policy, clock: clock,
                 counters: Dictionary(uniqueKeysWithValues: counters.map { ($0.key, $0.value) }),
                 epochs: Dictionary(uniqueKeysWithValues: epochs.map { ($0.key, $0.value) }),
                 rejected: rejected, purgedRejectedCount: purgedRejectedCount, cursor: cursor,
                 locallyCreated: locallyCreated, lastServerTime: lastServerTime, sendFullHeld: sendFullHeld,
                 clockSkewCount: clockSkewCount, auditQueue: auditQueue, lastAuditSeq: lastAuditSeq,
                 lastAuditHash: lastAuditHash, clockAheadOfServer: clockAheadOfServer,
                 refreshing: refreshing.isEmpty ? nil : refreshing)
    }

    /// Rebuilds a replica from what `metadata`, `confirmed` and `pending` held.
    public init(metadata: Metadata, schema: Schema, confirmed: [SegmentState], pending: [SyncOperation]) {
        self.init(replica: metadata.replica, user: metadata.user, schema: schema, policy: metadata.policy, clock: metadata.clock)
        counters = SortedMap(metadata.counters.map { ($0.key, $0.value) })
        epochs = SortedMap(metadata.epochs.map { ($0.key, $0.value) })
        rejected = metadata.rejected
        purgedRejectedCount = metadata.purgedRejectedCount
        cursor = metadata.cursor
        locallyCreated = metadata.locallyCreated
        lastServerTime = metadata.lastServerTime
        sendFullHeld = metadata.sendFullHeld
        clockSkewCount = metadata.clockSkewCount
        auditQueue = metadata.auditQueue
        lastAuditSeq = metadata.lastAuditSeq
        lastAuditHash = metadata.lastAuditHash
        clockAheadOfServer = metadata.clockAheadOfServer ?? 0
        refreshing = metadata.refreshing ?? []
        self.confirmed = SortedMap(confirmed.map { ($0.key, $0) })
        self.pending = pending
        unviewed = Set(pending.map(\.segment))  // each view is built when first read
    }
}

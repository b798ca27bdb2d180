/// The storage the pull half of a sync needs, inside one read snapshot.
///
/// The reads that hand a segment to code that builds something from it are
/// `mutating`, though they change nothing: through `inout` an in-memory
/// store lends the segment where it lies. Read through a shared value, a
/// segment passed to a function the optimizer cannot see into is copied
/// whole first (every buffer retained, then released), in case the call
/// writes to the memory it came from. (A store whose storage is shared with
/// a copy of itself is copied once, at the first such read, as at any write.)
public protocol PullBackend {
    /// Every segment that exists at its current epoch, of these households.
    func existingSegments(of households: [HouseholdID]) throws -> [HeldSegment]
    /// The current epoch of a segment, nil if it never existed.
    func currentEpoch(of segment: SegmentKey) throws -> UInt32?
    /// Of `among` (sorted, no repeats), the segments with any change after `seq`, after `resumeAfter`, in order.
    func changedSegments(since seq: UInt64, after resumeAfter: SegmentKey?, among: [SegmentKey]) throws -> [SegmentKey]
    /// What `replica` lacks of a segment since `cursor` (see ServerSegment.delta).
    mutating func delta(of segment: SegmentKey, for replica: ReplicaID, since cursor: UInt64) throws -> SegmentPatch?
    /// The whole segment.
    mutating func snapshot(of segment: SegmentKey) throws -> SegmentPatch?
    /// The segment's state hash, from its context and element digest.
    mutating func stateHash(of segment: SegmentKey) throws -> SegmentHash?
    /// The highest sequence committed, as of this read snapshot.
    func maxSeq() throws -> UInt64
    /// Segments of these households whose epoch an erasure raised above 0.
    func raisedEpochs(of households: [HouseholdID]) throws -> [HeldSegment]
    /// Of these households' segments, those whose first op came after `seq`.
    func segmentsCreated(after seq: UInt64, of households: [HouseholdID]) throws -> Set<SegmentKey>
    /// What the server recorded the device as holding after its last pull, if anything.
    func recordedHeld(by replica: ReplicaID) throws -> [HeldSegment]?
}

/// What a pull sends.
public struct PullResult: Sendable {
    public var deltas: [SegmentPatch] = []
    public var snapshots: [SegmentPatch] = []
    public var purge: [PurgeInstruction] = []
    public var cursor: SyncCursor
    public var more = false
    public var needHeld = false
    public var segmentHashes: [SegmentHash] = []
    /// The check of every touched segment (nil when none).
    public var stateCheck: StateCheck? {
        segmentHashes.isEmpty ? nil : StateCheck(hashes: segmentHashes, deltas: deltas, snapshots: snapshots)
    }
    /// The segments the device holds after this response (for the server's record).
    public var heldAfter: [HeldSegment] = []
    /// Raised epochs of the user's segments (see `SyncResponse.epochs`).
    public var epochs: [HeldSegment] = []
    public init(cursor: SyncCursor) { self.cursor = cursor }
}

/// Computes snapshots, purges and deltas from what the device says it holds
/// (DESIGN §5): snapshots = readable − held, purges = held − readable, deltas
/// = changes since the cursor of held ∩ readable. It never relies on the
/// server's memory of what it sent.
public enum PullBuilder {
    public static func build<Backend: PullBackend>(_ request: SyncRequest, device: DeviceIdentity, policy: PolicyContext,
                                                   schema: Schema, now: UInt64, push: PushResult?,
                                                   backend: inout Backend) throws -> PullResult {
        let snapshotSeq = try backend.maxSeq()
        // Readable: existing segments of assigned households the user may read now, in key order.
        // (Households in order, so a store that lists each one's segments in order needs no real sort.)
        let assigned = policy.assignments.map(\.household).sortedUnique()
        let readable = try backend.existingSegments(of: assigned).filter { held in
            PolicyEvaluator.mayRead(held.segment, context: policy, now: now,
                                    serverOnly: schema.isServerOnly(held.segment.purpose))
        }.sortedUnique()
        let createdEpochs = push?.createdSegments ?? [:]
        let created = Set(createdEpochs.keys)
        // Only purposes the user may use: that a purpose they cannot see was erased is itself a disclosure.
        let raised = try backend.raisedEpochs(of: assigned).filter { held in
            PolicyEvaluator.access(to: held.segment, context: policy, now: now,
                                   serverOnly: schema.isServerOnly(held.segment.purpose)).isAllowed
        }
        var held: [HeldSegment]
        // What the device would hold had it taken everything readable before this push.
        let readableBefore = created.isEmpty ? readable : readable.filter { !created.contains($0.segment) }
        if let list = request.held.segments {
            held = list
        } else if HeldSet.digest(of: readableBefore) == request.held.digest {
            held = readableBefore
        } else if let recorded = try backend.recordedHeld(by: device.replica), HeldSet.digest(of: recorded) == request.held.digest {
            // The device still holds what it held after its last pull (say, a segment since erased).
            held = recorded
        } else if let inferred = try inferHeld(request, readable: readable, created: created, assigned: assigned, backend: backend) {
            held = inferred
        } else {
            var result = PullResult(cursor: request.cursor)
            result.needHeld = true
            // The epochs alone let the device drop what it holds of an erased epoch
            // (ClientReplica.apply step 3); a purge would also hit segments it never held.
            result.epochs = raised
            return result
        }
        for (segment, epoch) in createdEpochs where !held.contains(where: { $0.segment == segment }) {
            held.append(HeldSegment(segment: segment, epoch: epoch))
        }
        // Sorted arrays, not sets: a device holds a few hundred segments and a
        // pull walks them several times; hashing them all was most of its cost.
        let split = SortedWalk.split(held.sortedUnique(), readable)
        var result = PullResult(cursor: request.cursor)
        result.epochs = raised

        // Purges: held but not readable at that epoch.
        for entry in split.onlyLeft {
            let current = try backend.currentEpoch(of: entry.segment)
            let erased = current.map { $0 > entry.epoch } ?? false
            result.purge.append(PurgeInstruction(segment: entry.segment, epoch: entry.epoch,
                                                 reason: erased ? PurgeInstruction.erased : PurgeInstruction.notReadable))
        }

        var budget = max(1, request.limit)
        var items = 0
        func spend(_ patch: SegmentPatch) {
            budget -= patch.estimatedSize
            items += 1
        }

        // Segments the device pushed into without holding them must arrive
        // whole in this response, whatever the budget.
        var pushedSegments: [SegmentKey] = []  // accepted ops come in runs of one segment
        for (segment, _) in push?.accepted ?? [] where pushedSegments.last != segment { pushedSegments.append(segment) }
        pushedSegments = pushedSegments.sortedUnique()
        var snapshotKeys = split.onlyRight.map(\.segment)
        let urgent = snapshotKeys.filter { pushedSegments.sortedContains($0) }
        snapshotKeys.removeAll { pushedSegments.sortedContains($0) }
        var ownAccepted: [SegmentKey: Set<Dot>] = [:]
        if !urgent.isEmpty {
            let wanted = Set(urgent)
            for (segment, dot) in push?.accepted ?? [] where wanted.contains(segment) { ownAccepted[segment, default: []].insert(dot) }
        }
        for key in urgent {
            guard var patch = try backend.snapshot(of: key) else { continue }
            // The device applies its accepted ops on top (ClientReplica.apply, step 4): leave them out.
            if let own = ownAccepted[key] { patch.elements = patch.elements.compactMap { ServerSegment.leavingOut(own, from: $0) } }
            result.snapshots.append(patch)
            spend(patch)
        }

        // Deltas of held ∩ readable since the cursor, paged by segment order.
        // (Readable lists each segment once, at its epoch, so the keys of the
        // intersection are sorted and unique too.)
        let changed = try backend.changedSegments(since: request.cursor.seq, after: request.cursor.resumeAfter,
                                                  among: split.both.map(\.segment))
        var deltasComplete = true
        var looked = 0  // changed[..<looked] were looked at; the rest waits for a later page
        for key in changed {
            if budget <= 0, items > 0 {
                deltasComplete = false
                break
            }
            looked += 1
            guard let patch = try backend.delta(of: key, for: device.replica, since: request.cursor.seq) else { continue }
            result.deltas.append(patch)
            spend(patch)
            result.cursor = SyncCursor(seq: request.cursor.seq, resumeAfter: key,
                                       resumeSeq: request.cursor.resumeSeq ?? snapshotSeq)
        }
        if deltasComplete {
            result.cursor = SyncCursor(seq: request.cursor.resumeSeq ?? snapshotSeq)
            // Snapshots page themselves: what arrives is held next time.
            for key in snapshotKeys {
                if budget <= 0, items > 0 {
                    result.more = true
                    break
                }
                guard let patch = try backend.snapshot(of: key) else { continue }
                result.snapshots.append(patch)
                spend(patch)
            }
        } else {
            result.more = true
        }

        // Held after: what it held, less the purges (held − readable), plus the snapshots.
        // (The snapshots are few: sorted apart, then merged with the rest in one walk.)
        result.heldAfter = SortedWalk.union(split.both, result.snapshots.map { HeldSegment(segment: $0.segment, epoch: $0.epoch) }.sortedUnique())

        // A pushed-into segment whose delta waits for a later page would not match yet.
        var stale = Array(changed[looked...])
        if let resume = request.cursor.resumeAfter {
            // Paged pull: segments up to resumeAfter were sent in an earlier page, at another sequence.
            let sentNow = result.deltas.map(\.segment)  // in segment order
            stale += pushedSegments.filter { key in key <= resume && !sentNow.sortedContains(key) }
        }
        stale = stale.sortedUnique()
        let heldAfterKeys = result.heldAfter.map(\.segment)
        // Each part is in key order (deltas come in key order, the few snapshots are sorted here).
        let touched = SortedWalk.union(SortedWalk.union(result.deltas.map(\.segment), result.snapshots.map(\.segment).sortedUnique()),
                                       pushedSegments.filter { heldAfterKeys.sortedContains($0) && !stale.sortedContains($0) })
        for key in touched {
            if let hash = try backend.stateHash(of: key) { result.segmentHashes.append(hash) }
        }
        return result
    }

    /// The usual reason a digest does not match: segments created since the
    /// device's cursor, which it cannot hold yet. The guess is used only when
    /// its digest matches the device's, so nothing rests on the server's memory.
    static func inferHeld<Backend: PullBackend>(_ request: SyncRequest, readable: [HeldSegment], created: Set<SegmentKey>,
                                                assigned: [HouseholdID], backend: Backend) throws -> [HeldSegment]? {
        guard request.cursor.resumeAfter == nil else { return nil }
        let fresh = try backend.segmentsCreated(after: request.cursor.seq, of: assigned)
        guard !fresh.isEmpty else { return nil }
        let guess = readable.filter { !fresh.contains($0.segment) && !created.contains($0.segment) }
        return HeldSet.digest(of: guess) == request.held.digest ? guess : nil
    }
}

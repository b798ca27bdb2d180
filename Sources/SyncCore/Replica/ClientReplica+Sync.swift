/// The sync half of the client state machine: build a request, apply a
/// response. Applying never rolls back confirmed state: a rejection only
/// removes ops from the pending overlay (DESIGN §3.1).
extension ClientReplica {
    /// What one response changed, for the `sync` summary.
    public struct SyncOutcome: Hashable, Sendable {
        public var accepted = 0
        public var rejected: [RejectedRecord] = []
        public var pulledElements = 0
        public var snapshots = 0
        public var purged: [SegmentKey] = []
        public var newConflicts = 0
        /// Segments whose hash did not match; they are re-fetched as snapshots.
        public var resnapshots: [SegmentKey] = []
        public var auditAcknowledged = 0
        public var skewedStamps = 0
        /// The server already had one of this device's dots with other content: its store is older
        /// than what it sent (restored from a backup). Every segment is fetched again (`refreshing`).
        public var restored = false
        /// Another round trip is needed (more pages, full held list, re-snapshots).
        public var needsAnotherRound = false
        public init() {}
    }

    /// The request for the next round trip, carrying pending ops starting at
    /// `from` (at most `maxOps`), sorted by household so the codec can group them.
    public func makeRequest(from start: Int = 0, maxOps: Int = .max, limit: Int = 4 << 20) -> SyncRequest {
        let end = start + min(maxOps, max(0, pending.count - start))
        let ops = start < pending.count ? Self.requestOps(pending, start..<end) : []
        let held = heldSegments
        return SyncRequest(cursor: cursor, schemaHash: schema.shortHash,
                           held: HeldSet(segments: held, includeList: sendFullHeld),
                           ops: ops, auditEvents: auditQueue, limit: limit, policyDigest: policy.digest)
    }

    /// The ops of `pending[range]` as a request carries them: grouped by
    /// household and segment (`groupedOrder`), with superseded field writes
    /// absorbed (`absorb`). Worked out on positions, so each op is copied once,
    /// into the request (a copy retains its strings, context and payload).
    static func requestOps(_ pending: [SyncOperation], _ range: Range<Int>) -> [SyncOperation] {
        pending.withUnsafeBufferPointer { all in
            let order = groupedOrder(all, range)
            var dropped = [Bool](repeating: false, count: order.count)
            var absorbs = [[UInt64]?](repeating: nil, count: order.count)
            // Ops arrive grouped by segment: look within each run of one segment and epoch only.
            var start = 0
            while start < order.count {
                var end = start + 1
                while end < order.count, all[order[end]].segment == all[order[start]].segment, all[order[end]].epoch == all[order[start]].epoch {
                    end += 1
                }
                if end - start > 1 { absorb(all, order, start..<end, absorbs: &absorbs, dropped: &dropped) }
                start = end
            }
            var result: [SyncOperation] = []
            result.reserveCapacity(order.count)
            for position in order.indices where !dropped[position] {
                // Copied straight into the list and changed there: a local copy was copied again and destroyed.
                result.append(all[order[position]])
                if let counters = absorbs[position] { result[result.count - 1].absorbs = counters }
            }
            return result
        }
    }

    /// Leaves out of a request each field write that a later write of the
    /// same request supersedes (same field, segment and epoch, and a context
    /// that holds the earlier write and everything it had seen), naming it in
    /// the later write's `absorbs` instead. Merging both leaves the same state
    /// as merging the later alone (the earlier value is covered), so only the
    /// last draft of a field leaves the device: less to send on a slow line,
    /// and nothing on the server that the worker had already replaced.
    /// The ops stay pending whole until the server's verdict comes back.
    ///
    /// One segment's run (`run` are positions in `order`): each set op whose
    /// field is written again later in the run is absorbed by the last such
    /// write, when that write's context holds it and everything it had seen.
    private static func absorb(_ ops: UnsafeBufferPointer<SyncOperation>, _ order: [Int], _ run: Range<Int>,
                               absorbs: inout [[UInt64]?], dropped: inout [Bool]) {
        // The last write of each field in the run. A run is a handful of ops: a scan
        // beats a dictionary, which hashed every field name.
        var lastByField: [String: Int] = [:]
        if run.count > 32 {  // a long offline stretch in one segment: scans would be quadratic
            for position in run { if case .set(let field, _, _) = ops[order[position]].payload { lastByField[field] = position } }
        }
        func lastWrite(of field: String, after position: Int) -> Int? {
            if run.count > 32 { return lastByField[field].flatMap { $0 > position ? $0 : nil } }
            for later in (position + 1..<run.upperBound).reversed() {
                if case .set(let name, _, _) = ops[order[later]].payload, name == field { return later }
            }
            return nil
        }
        for position in run {
            let op = ops.baseAddress! + order[position]  // read in place, not copied
            guard case .set(let field, _, _) = op.pointee.payload, let later = lastWrite(of: field, after: position) else { continue }
            let successor = ops.baseAddress! + order[later]
            guard (absorbs[later]?.count ?? successor.pointee.absorbs?.count ?? 0) < OperationValidator.maxAbsorbed,
                  successor.pointee.dot.replica == op.pointee.dot.replica, successor.pointee.context.contains(op.pointee.dot),
                  successor.pointee.context.includes(op.pointee.context) else { continue }
            absorbs[later] = (absorbs[later] ?? successor.pointee.absorbs ?? []) + [op.pointee.dot.counter]
            dropped[position] = true
        }
    }

    /// Positions of `ops[range]` grouped by household, then by segment within
    /// it, so the codec writes one group header per segment. Households come
    /// in ID order (any order serves); a household's segments in order of
    /// first appearance, so its first op (its createHousehold, in REGIE) still
    /// comes before the rest of it; order within a segment is kept. A sort of
    /// (household, position) pairs: ranking households and segments in
    /// dictionaries hashed every op.
    static func groupedOrder(_ ops: UnsafeBufferPointer<SyncOperation>, _ range: Range<Int>) -> [Int] {
        var keyed = range.map { (high: ops[$0].segment.household.high, low: ops[$0].segment.household.low, position: $0) }
        keyed.sort { ($0.high, $0.low, $0.position) < ($1.high, $1.low, $1.position) }
        var order = keyed.map(\.position)
        // Within a household (a short run), segments by first appearance.
        var segments: [SegmentKey] = []  // in order of first appearance; one list reused for every household
        var start = 0
        while start < order.count {
            var end = start + 1
            while end < order.count, keyed[end].high == keyed[start].high, keyed[end].low == keyed[start].low { end += 1 }
            if end - start > 1 {
                segments.removeAll(keepingCapacity: true)
                var mixed = false
                for position in start..<end {
                    let segment = ops[order[position]].segment
                    if segments.last != segment {
                        if segments.contains(segment) { mixed = true } else { segments.append(segment) }
                    }
                }
                if mixed || segments.count > 1 {
                    var run: [Int] = []
                    run.reserveCapacity(end - start)
                    for segment in segments {
                        for position in start..<end where ops[order[position]].segment == segment { run.append(order[position]) }
                    }
                    order.replaceSubrange(start..<end, with: run)
                }
            }
            start = end
        }
        return order
    }

    /// Applies a sync response. `wall` is the device clock (ms).
    /// (`consuming`: its deltas are lent to the merge where they lie; see step 5.)
    @discardableResult
    public mutating func apply(_ response: consuming SyncResponse, wall: UInt64) -> SyncOutcome {
        var outcome = SyncOutcome()
        // Segments this response changed, repeats allowed (a set only if views must be dropped).
        var touched: [SegmentKey] = []
        // The accepted ranges by segment (step 4, and the conflict tally's look ahead to it).
        var acceptedRanges: [SegmentKey: [AcceptedRange]] = [:]
        for range in response.accepted { acceptedRanges[range.segment, default: []].append(range) }
        let conflictScope = conflictScope(of: response)
        var conflictTally = beginConflictTally(conflictScope, of: response, acceptedRanges: acceptedRanges)
        // A view shares the confirmed state's containers (SegmentState.isView): drop the
        // views of the segments this response changes before merging into them in place,
        // or every merge would copy a log or goal list a view still holds. Built again when next read.
        var viewsDropped: [SegmentKey] = []
        if !overlays.isEmpty {
            for segment in response.snapshots.map(\.segment) + response.deltas.map(\.segment) + response.accepted.map(\.segment)
                + response.rejected.map(\.segment) where overlays.removeValue(forKey: segment) != nil {
                viewsDropped.append(segment)
            }
        }

        if let policy = response.policy { self.policy = policy }
        lastServerTime = max(lastServerTime, response.serverTime)
        if let schema = response.schema { self.schema = schema }
        if !clock.observe(HLCTimestamp(milliseconds: response.serverTime, logical: 0), wallMilliseconds: wall) {
            outcome.skewedStamps += 1
        }
        // The round trip only makes the wall clock read later than the server's answer, never earlier.
        clockAheadOfServer = wall > response.serverTime &+ clock.maxDriftMilliseconds ? wall - response.serverTime : 0

        // Which epochs the device held before this response (an erasure voids
        // ops written for an epoch the device held; see the rejections below).
        var heldEpochs: [SegmentKey: UInt32] = [:]
        for rejection in response.rejected { heldEpochs[rejection.segment] = confirmed[rejection.segment]?.epoch }
        let raisedEpochs = Dictionary(response.epochs.map { ($0.segment, $0.epoch) }, uniquingKeysWith: max)

        // 1. Snapshots replace what the device had.
        for patch in response.snapshots {
            var state = SegmentState(key: patch.segment, epoch: patch.epoch)
            state.join(context: patch.context)
            for element in patch.elements { state.join(element) }
            observeStamps(in: patch.elements, wall: wall, outcome: &outcome)
            confirmed[patch.segment] = consume state  // moved, not copied
            if !refreshing.isEmpty { refreshing.remove(patch.segment) }
            // A snapshot's context has every dot the server saw here, this device's own too: a
            // device restored from an older backup learns from it how far its counter really went,
            // so that its next writes there do not reuse a dot again.
            let ownTop = patch.context.highestCounter(of: replica)
            if ownTop > 0, ownTop > (counters[patch.segment] ?? 0) { counters[patch.segment] = ownTop }
            let epoch = max(epochs[patch.segment] ?? 0, patch.epoch)
            if epoch != 0 { epochs[patch.segment] = epoch }  // absent is 0 (see write)
            touched.append(patch.segment)
            outcome.snapshots += 1
            outcome.pulledElements += patch.elements.count
        }

        // 2. Rejections leave the overlay with their dependants.
        var rebase: [SyncOperation] = []
        // Dots are unique per segment and epoch only: match all three.
        let rejectedOps = Dictionary(response.rejected.map { (OpIdentity($0.segment, $0.epoch, $0.dot), $0.reason) },
                                     uniquingKeysWith: { first, _ in first })
        if !rejectedOps.isEmpty {
            var removed: [SyncOperation: RefusalReason] = [:]
            var rejectedItems = Set<OpIdentity>()
            var kept: [SyncOperation] = []
            for op in pending {
                let identity = OpIdentity(op.segment, op.epoch, op.dot)
                if let reason = rejectedOps[identity] {
                    removed[op] = reason
                    rejectedItems.insert(identity)
                } else if let item = op.payload.referencedItem ?? correctionTarget(op),
                          rejectedItems.contains(OpIdentity(op.segment, op.epoch, item)) {
                    removed[op] = .dependsOnRejected
                    rejectedItems.insert(identity)
                } else {
                    kept.append(op)
                }
            }
            // Sorted by dot, so an item's insert comes before the ops on it.
            var rebasing = Set<OpIdentity>()
            for (op, reason) in removed.sorted(by: { $0.key.dot < $1.key.dot }) {
                confirmed.update(op.segment) { if $0.epoch == op.epoch { $0.markSeen(op.dot) } }
                if case .createHousehold = op.payload { locallyCreated.remove(op.segment.household) }
                let record = RejectedRecord(op: op, reason: reason, at: wall)
                if reason == .erased || reason == .dependsOnRejected, heldEpochs[op.segment] != op.epoch,
                   Self.builtOnNothing(op, replica: replica, rebasing: rebasing),
                   (raisedEpochs[op.segment] ?? epochs[op.segment] ?? 0) > op.epoch {
                    // New work, for a segment the device never held, stamped with an epoch it did not
                    // know was erased and built on none of its data (or only on other such work):
                    // written again for the current epoch.
                    rebase.append(op)
                    rebasing.insert(OpIdentity(op.segment, op.epoch, op.dot))
                    continue
                }
                if reason == .erased {
                    purgedRejectedCount += 1  // ops of an erased segment are never kept
                } else {
                    rejected.append(record)
                }
                outcome.rejected.append(record)
                touched.append(op.segment)
            }
            pending = kept
        }

        // 3. Purges: segments the device may no longer hold, and any it holds
        // at an epoch an erasure has since raised.
        var purges = response.purge
        for (segment, epoch) in raisedEpochs where epoch > (epochs[segment] ?? 0) {
            epochs[segment] = epoch
            counters[segment] = nil
            if let held = confirmed[segment], held.epoch < epoch, !purges.contains(where: { $0.segment == segment }) {
                purges.append(PurgeInstruction(segment: segment, epoch: held.epoch, reason: PurgeInstruction.erased))
            }
        }
        for instruction in purges {
            purge(instruction)
            outcome.purged.append(instruction.segment)
        }
        if !purges.isEmpty {
            let purged = Set(purges.map(\.segment))
            touched.removeAll { purged.contains($0) }  // a later step may touch one again
        }

        // 4. Accepted ops move from pending into confirmed.
        if !response.accepted.isEmpty {
            // Not reserved: usually every op is accepted, and `pending` would keep the spare capacity.
            var kept: [SyncOperation] = []
            let snapshotted = Set(response.snapshots.map(\.segment))
            var rebuilt: [SegmentKey: SegmentState] = [:]
            // Each op is lent where it lies, through `inout` (decision 45): `for op in pending` copied
            // every op (its strings, context and payload retained) and released the copy again, and
            // so did a read through a pointer handed on to `apply`. The list is taken out of `self`
            // for that, so lending an op from it and writing `confirmed` do not overlap.
            var ops: [SyncOperation] = []
            swap(&ops, &pending)
            for index in ops.indices {
                let segment = ops[index].segment, epoch = ops[index].epoch
                guard accepts(acceptedRanges, segment: segment, epoch: epoch, dot: ops[index].dot) else {
                    kept.append(ops[index])
                    continue
                }
                lend(&ops[index]) { op in
                    if snapshotted.contains(segment) {
                        // The snapshot's context already has the dot (so `apply` would skip it) but not
                        // always its content (a snapshot leaves out what the device's accepted ops put
                        // there): apply it to a state of its own and join that in.
                        rebuilt[segment, default: SegmentState(key: segment, epoch: epoch)].apply(op)
                    } else {
                        // In place: the state's buffers stay uniquely referenced, so no copy.
                        if !confirmed.contains(segment) {
                            confirmed[segment] = SegmentState(key: segment, epoch: epoch)
                            if !refreshing.isEmpty { refreshing.remove(segment) }  // made here by the push, held as the server knows
                        }
                        confirmed.update(segment) { if $0.epoch == epoch { $0.apply(op) } }
                    }
                    if case .createHousehold = op.payload { locallyCreated.remove(segment.household) }
                }
                if touched.last != segment { touched.append(segment) }
                outcome.accepted += 1
            }
            for (key, own) in rebuilt { confirmed.update(key) { if $0.epoch == own.epoch { $0.join(own) } } }
            pending = kept
        }

        // 5. Deltas join into held segments.
        let replica = self.replica
        // Segments that keep pending ops after step 4, or get rebased ones at the end: their views differ.
        let leftPending = response.deltas.isEmpty ? [] : Set(pending.map(\.segment)).union(response.rejected.map(\.segment))
        // Each patch is lent where it lies (decision 45; the response is this call's own): `for patch in`
        // copied each patch, and an element read through a pointer was copied for its join.
        for index in response.deltas.indices {
            let segment = response.deltas[index].segment, epoch = response.deltas[index].epoch
            let reading = conflictTally.reading(delta: index, segment: segment, in: conflictScope,
                                                nothingLeftPending: !leftPending.contains(segment))
            var newConflicts = 0
            let joined = lend(&response.deltas[index]) { patch in
                confirmed.update(segment) { state -> Bool in
                    guard state.epoch == epoch else { return false }
                    // A delta leaves out the device's own writes but its context has their dots, also of
                    // writes still pending here (a push whose answer was lost): taken from the context,
                    // they would make the overlay and the later acknowledgement skip those writes as seen.
                    // The device's own dots enter its copy only through its own verdicts.
                    state.join(context: patch.context, leavingOut: replica)
                    let readingConflicts: Bool
                    switch reading {
                    case .inJoin, .beforeInView(afterInJoin: true): readingConflicts = true
                    case .wholeSegment, .beforeInView(afterInJoin: false): readingConflicts = false
                    }
                    for element in patch.elements.indices {
                        lend(&patch.elements[element]) { element in
                            guard readingConflicts, Self.mayConflict(element) else {
                                _ = state.join(element)
                                return
                            }
                            var change = SegmentState.ConflictChange()
                            _ = state.join(element, readingConflict: true, &change)
                            conflictTally.count(change, reading, counted: &newConflicts)
                        }
                    }
                    return true
                }
            }
            conflictTally.finish(delta: index, reading, joined: joined == true, segment: segment,
                                 elements: response.deltas[index].elements, counted: newConflicts)
            guard joined == true else { continue }
            observeStamps(in: response.deltas[index].elements, wall: wall, outcome: &outcome)
            touched.append(segment)
            outcome.pulledElements += response.deltas[index].elements.count
        }

        // 6. The state check: a mismatch drops the confirmed copies it covers
        // (pending ops stay), so the next request asks for fresh snapshots.
        // (A push repeated in a smaller chunk than the one whose answer was
        // lost fails it too, since the server then holds writes this copy
        // gets only when they are acknowledged; it heals the same way, at
        // the cost of one snapshot.)
        if let check = response.stateCheck {
            let covered = check.segments(deltas: response.deltas, snapshots: response.snapshots)
            var hashes: [UInt64] = []
            hashes.reserveCapacity(covered.count)
            for held in covered {
                // Lent through `update`: read through `withValue`, each state was copied for the call (decision 45).
                guard let hash = confirmed.update(held.segment, { $0.epoch == held.epoch ? $0.stateHashWord() : nil }) ?? nil else { break }
                hashes.append(hash)
            }
            if hashes.count != covered.count || StateCheck.sum(words: hashes) != check.digest {
                for held in covered where confirmed[held.segment] != nil {
                    confirmed[held.segment] = nil
                    outcome.resnapshots.append(held.segment)
                    touched.append(held.segment)
                }
            }
        }

        // 7. A dot of this device that the server already had with other content: the device's
        // store is older than what it sent (restored from a backup). The refused ops stay in
        // `rejected`, with their text; what is missing here is fetched again below.
        if response.rejected.contains(where: { $0.reason == .dotReuse }) { outcome.restored = true }

        cursor = response.cursor
        sendFullHeld = response.needHeld || !outcome.resnapshots.isEmpty || !outcome.purged.isEmpty
        let wasRefreshing = !refreshing.isEmpty
        if wasRefreshing, !response.more, !response.needHeld {
            // The server has sent every segment this device may read: one still waiting is not among them.
            for segment in refreshing.sorted() {
                guard let held = confirmed[segment] else { continue }
                let instruction = PurgeInstruction(segment: segment, epoch: held.epoch, reason: PurgeInstruction.notReadable)
                purge(instruction)
                outcome.purged.append(segment)
                sendFullHeld = true
            }
            refreshing = []
        }
        if outcome.restored, !wasRefreshing {
            // What the device sent after the backup is missing from every segment it held (deltas leave
            // a device's own writes out), not only where a dot was reused, and its counters there are
            // behind: all are fetched again whole, as on a new device, and shown meanwhile as they are
            // (`refreshing`); each snapshot moves the counter past the reused dots (step 1). Once: the
            // reused dots of a later chunk, stamped before the refresh, need no second one.
            refreshing = Set(confirmed.keys)
            cursor = .start
            sendFullHeld = true
        }
        if response.auditAck > 0 {
            let before = auditQueue.count
            auditQueue.removeAll { $0.deviceSeq <= response.auditAck }
            outcome.auditAcknowledged = before - auditQueue.count
        }
        if pending.isEmpty {
            overlays = [:]  // nothing pending: no view differs from its confirmed state
            unviewed = []
        } else {
            // Also the views of segments whose epoch the response raised: a view of a segment the
            // device does not hold is built at its epoch, and ops of the old one no longer count.
            dropViews(of: Set(touched).union(viewsDropped).union(raisedEpochs.keys))
        }
        var rebased: [OpIdentity: Dot] = [:]
        for op in rebase {
            // An op that cannot be written again (its parent failed, or policy
            // now refuses it) is the worker's own text: keep it where
            // `fieldcli rejected` shows it, never drop it silently.
            guard let payload = Self.payload(of: op, mappingDots: { rebased[OpIdentity(op.segment, op.epoch, $0)] }) else {
                rejected.append(RejectedRecord(op: op, reason: .dependsOnRejected, at: wall))
                continue
            }
            do {
                let written = try write(segment: op.segment, payload: payload, wall: wall)
                rebased[OpIdentity(op.segment, op.epoch, op.dot)] = written.dot
            } catch {
                rejected.append(RejectedRecord(op: op, reason: error.refusal ?? .invalid, at: wall))
            }
        }
        outcome.newConflicts = newConflicts(conflictTally, conflictScope, of: response, dropped: outcome.resnapshots)
        clockSkewCount += outcome.skewedStamps
        outcome.needsAnotherRound = response.more || response.needHeld || !outcome.resnapshots.isEmpty || !rebase.isEmpty
            || outcome.restored
        return outcome
    }

    /// An op whose carried context holds only its author's own dots and which
    /// refers to nothing but ops in `rebasing` (its own earlier, rebased work).
    static func builtOnNothing(_ op: SyncOperation, replica: ReplicaID, rebasing: Set<OpIdentity> = []) -> Bool {
        guard op.context.entries.allSatisfy({ $0.replica == replica }) else { return false }
        return payload(of: op) { rebasing.contains(OpIdentity(op.segment, op.epoch, $0)) ? $0 : nil } != nil
    }

    /// The op's payload with every dot it refers to mapped through `map`; nil
    /// when one cannot be mapped.
    static func payload(of op: SyncOperation, mappingDots map: (Dot) -> Dot?) -> OperationPayload? {
        switch op.payload {
        case .createHousehold, .insert:
            return op.payload
        case .set(let field, let value, let resolves):
            var mapped: [Dot] = []
            for dot in resolves {
                guard let new = map(dot) else { return nil }
                mapped.append(new)
            }
            return .set(field: field, value: value, resolves: mapped)
        case .append(let log, var body):
            if let original = body.correctionOf {
                guard let new = map(original) else { return nil }
                body.correctionOf = new
            }
            return .append(log: log, entry: body)
        case .edit(let collection, let item, let field, let value):
            return map(item).map { .edit(collection: collection, item: $0, field: field, value: value) }
        case .move(let collection, let item, let position):
            return map(item).map { .move(collection: collection, item: $0, position: position) }
        case .remove(let collection, let item):
            return map(item).map { .remove(collection: collection, item: $0) }
        }
    }

    /// Whether a response's accepted ranges take the pending op with this
    /// segment, epoch and dot (step 4 of `apply`, and the conflict tally's look
    /// ahead to it). The server accepts only ops of a segment's current epoch,
    /// which the device knows once step 3 has run: an older-epoch op with the
    /// same dot is not the accepted one.
    @inline(__always)
    func accepts(_ ranges: [SegmentKey: [AcceptedRange]], segment: SegmentKey, epoch: UInt32, dot: Dot) -> Bool {
        epoch >= (epochs[segment] ?? 0) && ranges[segment]?.contains(where: { $0.contains(dot) }) == true
    }

    /// An op's identity across epochs.
    struct OpIdentity: Hashable {
        var segment: SegmentKey
        var epoch: UInt32
        var dot: Dot
        init(_ segment: SegmentKey, _ epoch: UInt32, _ dot: Dot) {
            self.segment = segment
            self.epoch = epoch
            self.dot = dot
        }
    }

    private func correctionTarget(_ op: SyncOperation) -> Dot? {
        if case .append(_, let body) = op.payload { return body.correctionOf }
        return nil
    }

    private mutating func observeStamps(in elements: [SegmentElement], wall: UInt64, outcome: inout SyncOutcome) {
        var newest = HLCTimestamp.zero
        // By index, each element read where it lies: `for element in` copied each one (every string and list retained).
        for index in elements.indices { newest = max(newest, elements[index].newestStamp) }
        if newest > .zero, !clock.observe(newest, wallMilliseconds: wall) { outcome.skewedStamps += 1 }
    }

    /// Removes a segment from the device: its state, its pending ops and its
    /// rejected ops (only a count stays, DESIGN §4).
    mutating func purge(_ instruction: PurgeInstruction) {
        let segment = instruction.segment
        if let state = confirmed[segment], state.epoch > instruction.epoch { return }  // already past it
        confirmed[segment] = nil
        overlays[segment] = nil
        unviewed.remove(segment)  // `apply` marks it again if ops of a later epoch stay pending
        refreshing.remove(segment)  // gone: a state the device's own push makes again is not stale
        let droppedRejected = rejected.filter { $0.op.segment == segment }.count
        rejected.removeAll { $0.op.segment == segment }
        purgedRejectedCount += droppedRejected
        if instruction.reason == PurgeInstruction.erased {
            // Ops of an erased segment are never kept anywhere.
            purgedRejectedCount += pending.filter { $0.segment == segment && $0.epoch <= instruction.epoch }.count
            pending.removeAll { $0.segment == segment && $0.epoch <= instruction.epoch }
        }
        // Otherwise the device's own unsent writes stay queued: the server
        // rejects them into its quarantine, where an admin can requeue them.
        if instruction.reason == PurgeInstruction.erased {
            epochs[segment] = max(epochs[segment] ?? 0, instruction.epoch + 1)
            counters[segment] = nil
        }
        if segment.purpose == .regie { locallyCreated.remove(segment.household) }
    }

    /// Drops the views of the given segments, whose confirmed state or
    /// pending ops changed, and of segments with nothing pending; each is
    /// built again when first read (`lendView`).
    mutating func dropViews(of segments: Set<SegmentKey>) {
        let pendingSegments = Set(pending.map(\.segment))
        let stale = overlays.keys.filter { segments.contains($0) || !pendingSegments.contains($0) }
        for segment in stale { overlays[segment] = nil }
        unviewed = pendingSegments.subtracting(overlays.keys)
        // A dictionary keeps its buckets when emptied; after a sync that took
        // every pending op, give back the ones the last offline stretch grew.
        if overlays.isEmpty { overlays = [:] }
    }

    /// Drops every household, pending op and rejected op: a revoked device.
    public mutating func wipe() {
        confirmed = [:]
        overlays = [:]
        unviewed = []
        pending = []
        rejected = []
        refreshing = []
        counters = [:]
        epochs = [:]
        locallyCreated = []
        auditQueue = []
        cursor = .start
        sendFullHeld = true
    }
}

/// Conflicts as the device shows them: fields with concurrent values, items
/// edited while removed, and post-merge invariants (DESIGN §3).
public struct ConflictInfo: Hashable, Sendable, Codable {
    public enum Kind: String, Hashable, Sendable, Codable {
        /// A field holds concurrent distinct values.
        case concurrentValues
        /// A `single` field (one regisseur) holds more than one value.
        case invariant
        /// A collection item was edited while another worker removed it.
        case editedWhileRemoved
    }

    public var segment: SegmentKey
    public var kind: Kind
    /// Field or collection name.
    public var name: String
    public var item: Dot?
    public var values: [ConflictValue]
    public var invariant: String?
}

public struct ConflictValue: Hashable, Sendable, Codable {
    public var id: Dot
    public var value: String
    public var author: String
    public var stamp: HLCTimestamp
    public var winner: Bool
}

extension SegmentState {
    /// Whether this element is one of `conflicts(schema:)`.
    public func isInConflict(_ key: ElementKey) -> Bool {
        switch key {
        case .field(let name):
            return fields.withValue(name) { $0.isConflict } ?? false
        case .item(let collection, let id):
            return collections.withValue(collection) { $0.withItem(id) { $0.isInConflict } ?? false } ?? false
        case .creation, .logEntry:
            return false
        }
    }

    /// Every conflict in this state, in a stable order.
    public func conflicts(schema: Schema) -> [ConflictInfo] {
        var result: [ConflictInfo] = []
        for (name, register) in fields where register.isConflict {  // key order
            let invariant = schema.field(name)?.invariant
            let values = register.values.enumerated().map { index, value in
                ConflictValue(id: value.dot, value: value.value, author: value.author, stamp: value.stamp, winner: index == 0)
            }
            result.append(ConflictInfo(segment: key, kind: invariant == nil ? .concurrentValues : .invariant, name: name,
                                       item: nil, values: values, invariant: invariant.map { $0 == "single" ? "one \(name) per plan" : $0 }))
        }
        for (name, collection) in collections {
            for item in collection.liveItems where item.isFlagged || item.text.isConflict {
                let values = item.text.values.enumerated().map { index, value in
                    ConflictValue(id: value.dot, value: value.value, author: value.author, stamp: value.stamp, winner: index == 0)
                }
                result.append(ConflictInfo(segment: key, kind: item.isFlagged ? .editedWhileRemoved : .concurrentValues,
                                           name: name, item: item.id, values: values, invariant: nil))
            }
        }
        return result
    }
}

extension ClientReplica {
    /// Conflicts in what the device shows, optionally for one household.
    public func conflicts(household: HouseholdID? = nil) -> [ConflictInfo] {
        visibleSegments.filter { household == nil || $0.household == household }
            .flatMap { view($0)?.conflicts(schema: schema) ?? [] }
    }

    /// A conflicted field (item nil) or item.
    struct ConflictKey: Hashable {
        var segment: SegmentKey
        var name: String
        var item: Dot?
    }

    /// Where a sync response can change what is in conflict: the fields and
    /// goals its deltas carry, those its rejections take a pending write from,
    /// and the segments its snapshots replace whole. Nothing else can: an
    /// accepted op was in the view already, a context alone changes no value,
    /// and a segment the state check drops shows only the device's pending ops,
    /// which never conflict with one another.
    struct ConflictScope {
        /// The deltas' fields and goals are read off the response itself (no
        /// list of keys is built); these are the ones only rejections touch.
        var rejectedElements: [(segment: SegmentKey, keys: [ElementKey])] = []
        var wholeSegments = Set<SegmentKey>()
    }

    func conflictScope(of response: SyncResponse) -> ConflictScope {
        var scope = ConflictScope()
        scope.wholeSegments = Set(response.snapshots.map(\.segment))
        if !response.rejected.isEmpty {
            let refused = Set(response.rejected.map { OpIdentity($0.segment, $0.epoch, $0.dot) })
            var elements: [SegmentKey: [ElementKey]] = [:]
            for op in pending where refused.contains(OpIdentity(op.segment, op.epoch, op.dot)) && !scope.wholeSegments.contains(op.segment) {
                // A dependant (an edit of a refused goal) is on the refused op's own element.
                elements[op.segment, default: []].append(SegmentState.elementKey(of: op))
            }
            // Each element once: one a delta also carries is counted with the delta.
            let carried = Dictionary(response.deltas.map { ($0.segment, Set($0.elements.map(\.key))) }, uniquingKeysWith: { $0.union($1) })
            scope.rejectedElements = elements.map { segment, keys in
                (segment: segment, keys: keys.sortedUnique().filter { !(carried[segment]?.contains($0) ?? false) })
            }
        }
        return scope
    }

    /// Fields and goals can be in conflict; the creation record and log entries never are.
    static func mayConflict(_ element: SegmentElement) -> Bool {
        switch element {
        case .field, .item: return true
        case .creation, .logEntry: return false
        }
    }

    /// Counts the conflicts a sync makes new over its scope: what the device
    /// shows before the merge against what it shows after. Most of a response's
    /// fields and goals are read in their join, where it finds them
    /// (`SegmentState.join(_:readingConflict:_:)`): a search of its own for each,
    /// before and after, was about 1/8 of a device's apply in the trace replay.
    /// - A delta of a segment whose view before the merge is its confirmed
    ///   state once the response's verdicts are in (nothing pending, or every
    ///   pending op accepted: `unsettledSegments`) is read in the join, before
    ///   and after.
    /// - Any other delta is read before the merge in its view, and after it in
    ///   the join when nothing is left pending for the segment, else in the view
    ///   at the end (built again then).
    /// The elements read before the merge get one flag each, in response order:
    /// flags, not a set of keys, since hashing each key was ≈ 1/7 of a device's
    /// apply in the load benchmark.
    struct ConflictTally {
        /// How a delta's fields and goals are read.
        enum Reading {
            case wholeSegment  // a snapshot replaces the segment: counted by key
            case inJoin  // before and after
            case beforeInView(afterInJoin: Bool)
        }

        /// Per delta: whether it is read before the merge in its view.
        var beforeInView: [Bool] = []
        var flagsBefore: [Bool] = []
        var nextBefore = 0
        var wholeBefore = Set<ConflictKey>()
        /// Deltas whose elements are read after the merge in what the device shows, and their flags before.
        var deltasReadAfter: [Int] = []
        var flagsBeforeOfDeltasReadAfter: [Bool] = []
        /// New conflicts found in joins, by segment: a segment the state check drops counts none.
        var newInJoins: [(segment: SegmentKey, count: Int)] = []

        func reading(delta index: Int, segment: SegmentKey, in scope: ConflictScope, nothingLeftPending: Bool) -> Reading {
            if scope.wholeSegments.contains(segment) { return .wholeSegment }
            return beforeInView[index] ? .beforeInView(afterInJoin: nothingLeftPending) : .inJoin
        }

        /// One field or goal of a delta read in its join.
        mutating func count(_ change: SegmentState.ConflictChange, _ reading: Reading, counted: inout Int) {
            var before = change.before
            if case .beforeInView = reading {
                before = flagsBefore[nextBefore]
                nextBefore += 1
            }
            if change.after && !before { counted += 1 }
        }

        /// After a delta's join (`joined`: its state was there, at its epoch).
        mutating func finish(delta index: Int, _ reading: Reading, joined: Bool, segment: SegmentKey,
                             elements: [SegmentElement], counted: Int) {
            if counted > 0 { newInJoins.append((segment, counted)) }
            guard case .beforeInView(let afterInJoin) = reading, !(afterInJoin && joined) else { return }
            // Not joined in place: the state before the merge is what it shows after.
            let flags = elements.count(where: ClientReplica.mayConflict)
            flagsBeforeOfDeltasReadAfter += flagsBefore[nextBefore..<nextBefore + flags]
            nextBefore += flags
            deltasReadAfter.append(index)
        }
    }

    /// Starts a tally, before anything of `response` is merged.
    /// (`mutating` only to read each view in place: see `lendView`.)
    mutating func beginConflictTally(_ scope: ConflictScope, of response: SyncResponse,
                                     acceptedRanges: [SegmentKey: [AcceptedRange]]) -> ConflictTally {
        var tally = ConflictTally(wholeBefore: conflictKeys(in: scope.wholeSegments))
        let unsettled = unsettledSegments(response, acceptedRanges: acceptedRanges)
        tally.beforeInView.reserveCapacity(response.deltas.count)
        // By index: `for patch in` copied each patch.
        for index in response.deltas.indices {
            let segment = response.deltas[index].segment
            let inView = !scope.wholeSegments.contains(segment) && unsettled.contains(segment)
            tally.beforeInView.append(inView)
            if inView { appendConflictFlags(of: response.deltas[index].elements, in: segment, to: &tally.flagsBefore) }
        }
        for (segment, keys) in scope.rejectedElements {
            let flags = lendView(segment) { state in keys.map { state.isInConflict($0) } }
            tally.flagsBefore += flags ?? Array(repeating: false, count: keys.count)
        }
        return tally
    }

    /// The segments whose view (confirmed + pending) can differ from their
    /// confirmed state once the response's verdicts are in (step 4 of `apply`),
    /// so that their elements must be read in the view before the merge: one
    /// with a pending op the response does not accept, or a rejection, or an
    /// epoch it raises or a purge. In any other segment every pending op moves
    /// into the confirmed state, which then holds what the view showed.
    /// (By step 4's own rule, `accepts`: an op is accepted at an epoch no older
    /// than the device's, which only a raised epoch or a purge changes.)
    func unsettledSegments(_ response: SyncResponse, acceptedRanges: [SegmentKey: [AcceptedRange]]) -> Set<SegmentKey> {
        var unsettled = Set(response.rejected.map(\.segment))
        for epoch in response.epochs { unsettled.insert(epoch.segment) }
        for instruction in response.purge { unsettled.insert(instruction.segment) }
        pending.withUnsafeBufferPointer { ops in
            for index in ops.indices where !unsettled.contains(ops[index].segment) {
                let segment = ops[index].segment
                if !accepts(acceptedRanges, segment: segment, epoch: ops[index].epoch, dot: ops[index].dot) { unsettled.insert(segment) }
            }
        }
        return unsettled
    }

    /// Appends, for each field and goal of `elements`, whether it is in
    /// conflict in what the device shows of `segment` (read in place).
    mutating func appendConflictFlags(of elements: [SegmentElement], in segment: SegmentKey, to flags: inout [Bool]) {
        let read: Void? = lendView(segment) { state in
            elements.withUnsafeBufferPointer { elements in
                for element in elements.indices where Self.mayConflict(elements[element]) {
                    flags.append(state.isInConflict(elements[element].key))
                }
            }
        }
        if read == nil { flags += repeatElement(false, count: elements.count(where: Self.mayConflict)) }
    }

    /// Ends a tally once the sync has merged everything and dropped the views it changed:
    /// how many are in conflict now that were not before (a resolved one and
    /// a new one in the same sync do not cancel out).
    mutating func newConflicts(_ tally: ConflictTally, _ scope: ConflictScope, of response: SyncResponse,
                               dropped: [SegmentKey]) -> Int {
        var count = tally.newInJoins.reduce(0) { $0 + (dropped.contains($1.segment) ? 0 : $1.count) }
        var flagsAfter: [Bool] = []
        for index in tally.deltasReadAfter {
            appendConflictFlags(of: response.deltas[index].elements, in: response.deltas[index].segment, to: &flagsAfter)
        }
        count += zip(flagsAfter, tally.flagsBeforeOfDeltasReadAfter).count { $0 && !$1 }
        var next = tally.nextBefore  // the rejections' flags follow the deltas'
        for (segment, keys) in scope.rejectedElements {
            let flags = lendView(segment) { state in keys.map { state.isInConflict($0) } } ?? Array(repeating: false, count: keys.count)
            count += zip(flags, tally.flagsBefore[next..<next + keys.count]).count { $0 && !$1 }
            next += keys.count
        }
        return count + conflictKeys(in: scope.wholeSegments).subtracting(tally.wholeBefore).count
    }

    /// Which fields and items are in conflict, so a sync can count the new ones
    /// (a resolved one and a new one in the same sync must not cancel out).
    mutating func conflictKeys(in segments: Set<SegmentKey>) -> Set<ConflictKey> {
        var keys = Set<ConflictKey>()
        for segment in segments {
            lendView(segment) { state in
                for (name, register) in state.fields where register.isConflict { keys.insert(ConflictKey(segment: segment, name: name)) }
                for (name, collection) in state.collections {
                    // By index: a `for item in` loop copies every item (a dozen references) to look at two of its parts.
                    let items = collection.items
                    for index in items.indices where items[index].isInConflict {
                        keys.insert(ConflictKey(segment: segment, name: name, item: items[index].id))
                    }
                }
            }
        }
        return keys
    }
}

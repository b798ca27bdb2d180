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
            return collections.withValue(collection) { $0.withItem(id) { $0.isLive && ($0.isFlagged || $0.text.isConflict) } ?? false } ?? false
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

    /// Which of a scope's elements are in conflict in what the device shows:
    /// one flag per element, in scope order, and the whole segments' conflicts
    /// by key. Flags, not a set of keys: a sync asks before and after merging,
    /// and hashing each key both times was ≈ 1/7 of a device's apply in the load benchmark.
    struct ConflictMarks {
        var flags: [Bool] = []
        var whole = Set<ConflictKey>()

        /// How many are in conflict here but were not `before` (a resolved one
        /// and a new one in the same sync do not cancel out).
        func newConflicts(since before: ConflictMarks) -> Int {
            zip(flags, before.flags).count { $0 && !$1 } + whole.subtracting(before.whole).count
        }
    }

    /// Fields and goals can be in conflict; the creation record and log entries never are.
    static func mayConflict(_ element: SegmentElement) -> Bool {
        switch element {
        case .field, .item: return true
        case .creation, .logEntry: return false
        }
    }

    /// (`mutating` only to read each view in place: see `lendView`.)
    mutating func conflictMarks(in scope: ConflictScope, of response: SyncResponse) -> ConflictMarks {
        var marks = ConflictMarks(whole: conflictKeys(in: scope.wholeSegments))
        // By index, elements read in place: `for patch in` and `for element in` copied each patch
        // and each element (every string and list retained), twice per sync.
        for index in response.deltas.indices where !scope.wholeSegments.contains(response.deltas[index].segment) {
            let elements = response.deltas[index].elements
            let read: Void? = lendView(response.deltas[index].segment) { state in
                elements.withUnsafeBufferPointer { elements in
                    for element in elements.indices where Self.mayConflict(elements[element]) {
                        marks.flags.append(state.isInConflict(elements[element].key))
                    }
                }
            }
            if read == nil { marks.flags += repeatElement(false, count: elements.count(where: Self.mayConflict)) }
        }
        for (segment, keys) in scope.rejectedElements {
            let flags = lendView(segment) { state in keys.map { state.isInConflict($0) } }
            marks.flags += flags ?? Array(repeating: false, count: keys.count)
        }
        return marks
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
                    for index in items.indices where items[index].isLive && (items[index].isFlagged || items[index].text.isConflict) {
                        keys.insert(ConflictKey(segment: segment, name: name, item: items[index].id))
                    }
                }
            }
        }
        return keys
    }
}

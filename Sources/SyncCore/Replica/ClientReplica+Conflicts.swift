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
            return fields[name]?.isConflict == true
        case .item(let collection, let id):
            guard let item = collections[collection]?[id] else { return false }
            return item.isLive && (item.isFlagged || item.text.isConflict)
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
        var elements: [SegmentKey: [ElementKey]] = [:]
        var wholeSegments = Set<SegmentKey>()
    }

    func conflictScope(of response: SyncResponse) -> ConflictScope {
        var scope = ConflictScope()
        scope.wholeSegments = Set(response.snapshots.map(\.segment))
        for patch in response.deltas where !scope.wholeSegments.contains(patch.segment) {
            var keys: [ElementKey] = []
            for element in patch.elements {
                switch element {
                case .field, .item: keys.append(element.key)
                case .creation, .logEntry: break  // never in conflict
                }
            }
            if !keys.isEmpty { scope.elements[patch.segment, default: []] += keys }
        }
        if !response.rejected.isEmpty {
            let refused = Set(response.rejected.map { OpIdentity($0.segment, $0.epoch, $0.dot) })
            for op in pending where refused.contains(OpIdentity(op.segment, op.epoch, op.dot)) {
                // A dependant (an edit of a refused goal) is on the refused op's own element.
                scope.elements[op.segment, default: []].append(SegmentState.elementKey(of: op))
            }
        }
        return scope
    }

    /// Which of the scope's fields and goals are in conflict in what the device shows.
    func conflictKeys(in scope: ConflictScope) -> Set<ConflictKey> {
        var keys = conflictKeys(in: scope.wholeSegments)
        for (segment, elements) in scope.elements {
            guard let state = view(segment) else { continue }
            for element in elements where state.isInConflict(element) {
                switch element {
                case .field(let name): keys.insert(ConflictKey(segment: segment, name: name))
                case .item(let collection, let id): keys.insert(ConflictKey(segment: segment, name: collection, item: id))
                case .creation, .logEntry: break
                }
            }
        }
        return keys
    }

    /// Which fields and items are in conflict, so a sync can count the new ones
    /// (a resolved one and a new one in the same sync must not cancel out).
    func conflictKeys(in segments: Set<SegmentKey>) -> Set<ConflictKey> {
        var keys = Set<ConflictKey>()
        for segment in segments {
            guard let state = view(segment) else { continue }
            for (name, register) in state.fields where register.isConflict { keys.insert(ConflictKey(segment: segment, name: name)) }
            for (name, collection) in state.collections {
                // By index: a `for item in` loop copies every item (a dozen references) to look at two of its parts.
                let items = collection.items
                for index in items.indices where items[index].isLive && (items[index].isFlagged || items[index].text.isConflict) {
                    keys.insert(ConflictKey(segment: segment, name: name, item: items[index].id))
                }
            }
        }
        return keys
    }
}

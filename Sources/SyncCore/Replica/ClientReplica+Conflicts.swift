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

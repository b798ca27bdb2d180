/// Applying operations and joining element states. Both are idempotent,
/// commutative and associative (proved by the property tests).
extension SegmentState {
    /// The outcome of applying one op.
    public enum ApplyOutcome: Equatable, Sendable {
        /// The dot was already in the context: nothing happened.
        case duplicate
        /// The op was recorded; `element` is the element it changed, if any
        /// (a write that arrives already superseded changes only the context).
        case applied(element: ElementKey?)
    }

    /// Applies an op written for this segment and epoch. The caller has
    /// validated it (schema, policy, epoch); this only merges.
    @discardableResult
    public mutating func apply(_ op: SyncOperation) -> ApplyOutcome {
        guard !context.contains(op.dot) else { return .duplicate }
        let merged = merge(op, hashBefore: true)
        settleDigest(merged, before: merged.before)
        return merged.outcome
    }

    /// `apply` for a store that keeps each element's content hash: `before`
    /// is the hash of the element the op changes (nil: there is none yet), so
    /// only the changed element is hashed. Returns the outcome and that hash
    /// (nil when nothing changed, or when the state keeps no digest).
    mutating func apply(_ op: SyncOperation, elementHashBefore before: ContentHash128?) -> (outcome: ApplyOutcome, after: ContentHash128?) {
        guard !context.contains(op.dot) else { return (.duplicate, nil) }
        let merged = merge(op, hashBefore: false)
        return (merged.outcome, settleDigest(merged, before: before))
    }

    /// Moves the digest from the changed element's old hash to its new one;
    /// returns the new one (nil when nothing changed or no digest is kept).
    @discardableResult
    private mutating func settleDigest(_ merged: Merged, before: ContentHash128?) -> ContentHash128? {
        guard tracksDigest, case .applied(_?) = merged.outcome else { return nil }
        moveDigest(from: before, to: merged.after)
        return merged.after
    }

    /// The digest less an element's old hash, plus its new one (nil: none).
    private mutating func moveDigest(from before: ContentHash128?, to after: ContentHash128?) {
        if let before { elementDigest = elementDigest - before }
        if let after { elementDigest = elementDigest + after }
    }

    static func elementKey(of op: SyncOperation) -> ElementKey {
        switch op.payload {
        case .createHousehold: return .creation
        case .set(let field, _, _): return .field(field)
        case .append(let log, _): return .logEntry(log: log, dot: op.dot)
        case .insert(let collection, _, _): return .item(collection: collection, id: op.dot)
        case .edit(let collection, let item, _, _), .move(let collection, let item, _), .remove(let collection, let item):
            return .item(collection: collection, id: item)
        }
    }

    /// The content hash of one element's canonical form.
    static func digest(of element: SegmentElement) -> ContentHash128 {
        ElementHasher.digest(of: element)
    }

    /// The content hash of the element stored under a key, hashed where it
    /// lies: `element(key)` would build a SegmentElement, copying its parts.
    func elementHash(_ key: ElementKey) -> ContentHash128? {
        switch key {
        case .creation:
            return creation.map { ElementHasher.digest(creation: $0) }
        case .field(let name):
            return fields.withValue(name) { ElementHasher.digest(field: name, register: $0) }
        case .logEntry(let log, let dot):
            return logs.withValue(log) { $0.withEntry(dot) { ElementHasher.digest(log: log, entry: $0) } } ?? nil
        case .item(let collection, let id):
            return collections.withValue(collection) { $0.withItem(id) { ElementHasher.digest(collection: collection, item: $0) } } ?? nil
        }
    }

    /// A merge's outcome and, when the state keeps a digest, the changed
    /// element's hash after it (and before it, when asked), each worked out
    /// where the element lies during the merge: one search finds it for all
    /// three, where hashing through `elementHash` searched again for each.
    private struct Merged {
        var outcome: ApplyOutcome
        var before: ContentHash128? = nil
        var after: ContentHash128? = nil
    }

    private mutating func merge(_ op: SyncOperation, hashBefore: Bool) -> Merged {
        context.insert(op.dot)
        let hashing = tracksDigest, hashingBefore = tracksDigest && hashBefore
        switch op.payload {
        case .createHousehold:
            let record = CreationRecord(dot: op.dot, stamp: op.stamp, author: op.author)
            // Two creations of one ID never both land on the server (it accepts
            // only unseen IDs); the smaller dot wins so that replicas still agree.
            if let existing = creation, existing.dot < record.dot { return Merged(outcome: .applied(element: nil)) }
            let before = hashingBefore ? creation.map { ElementHasher.digest(creation: $0) } : nil
            creation = record
            return Merged(outcome: .applied(element: .creation), before: before, after: hashing ? ElementHasher.digest(creation: record) : nil)
        case .set(let field, let value, _):
            // Each write is made where it is applied and moved into the register; made once
            // outside the closure, it was copied in and destroyed after.
            // The hashes are plain locals for the closure, the result built once at the end: a
            // `Merged` changed inside the closure was copied out on return (its key retained).
            var before: ContentHash128?, after: ContentHash128?
            let slot = fields.slot(of: field)
            let changed: Bool
            if slot.found {
                changed = fields.modifyValue(at: slot.index) { register in
                    if hashingBefore { before = ElementHasher.digest(field: field, register: register) }
                    let changed = register.apply(RegisterValue(dot: op.dot, stamp: op.stamp, author: op.author, value: value),
                                                 context: op.context)
                    if hashing, changed { after = ElementHasher.digest(field: field, register: register) }
                    return changed
                }
            } else {
                // Stored even when the write changes nothing (it arrived superseded), as it always was.
                var register = MultiValueRegister<String>()
                changed = register.apply(RegisterValue(dot: op.dot, stamp: op.stamp, author: op.author, value: value), context: op.context)
                if hashing, changed { after = ElementHasher.digest(field: field, register: register) }
                fields.setValue(register, for: field, at: slot)
            }
            return Merged(outcome: .applied(element: changed ? .field(field) : nil), before: before, after: after)
        case .append(let log, let body):
            let entry = LogEntry(dot: op.dot, stamp: op.stamp, author: op.author, body: body)
            let key = ElementKey.logEntry(log: log, dot: op.dot)
            if isView {
                logs[log, default: AppendLog()].addOnTop(entry)
                return Merged(outcome: .applied(element: key))
            }
            guard logs[log, default: AppendLog()].add(entry) else {
                // Already there (its dot was not in the context): the same before and after.
                let hash = hashing ? elementHash(key) : nil
                return Merged(outcome: .applied(element: key), before: hashingBefore ? hash : nil, after: hash)
            }
            return Merged(outcome: .applied(element: key), after: hashing ? ElementHasher.digest(log: log, entry: entry) : nil)
        case .insert(let collection, let position, let text):
            return mergeIntoItem(op.dot, in: collection, hashing: hashing, hashingBefore: hashingBefore) { item in
                item.setBasePosition(position)
                item.applyText(RegisterValue(dot: op.dot, stamp: op.stamp, author: op.author, value: text), context: op.context)
            }
        case .edit(let collection, let id, let field, let value):
            return mergeIntoItem(id, in: collection, hashing: hashing, hashingBefore: hashingBefore) { item in
                let write = RegisterValue(dot: op.dot, stamp: op.stamp, author: op.author, value: value)
                switch field {
                case .text: item.applyText(write, context: op.context)
                case .status: item.applyStatus(write, context: op.context)
                }
            }
        case .move(let collection, let id, let position):
            return mergeIntoItem(id, in: collection, hashing: hashing, hashingBefore: hashingBefore) {
                $0.applyMove(RegisterValue(dot: op.dot, stamp: op.stamp, author: op.author, value: position), context: op.context)
            }
        case .remove(let collection, let id):
            return mergeIntoItem(id, in: collection, hashing: hashing, hashingBefore: hashingBefore) { $0.applyRemove(op.dot, context: op.context) }
        }
    }

    /// An op's change to one item, with the item's hashes around it (an item
    /// made here, by an op that arrived before the item's insert, had none before).
    private mutating func mergeIntoItem(_ id: Dot, in collection: String, hashing: Bool, hashingBefore: Bool,
                                        _ change: (inout CollectionItem) -> Void) -> Merged {
        var before: ContentHash128?, after: ContentHash128?  // locals, as in `merge`'s set
        var made = false
        modifyItem(id, in: collection, make: {
            made = true
            return CollectionItem(id: id, basePosition: nil)
        }) { item in
            if hashingBefore, !made { before = ElementHasher.digest(collection: collection, item: item) }
            change(&item)
            if hashing { after = ElementHasher.digest(collection: collection, item: item) }
        }
        return Merged(outcome: .applied(element: .item(collection: collection, id: id)), before: before, after: after)
    }

    /// Changes an item of a collection where it lies (an item an op names
    /// before its insert arrives starts without a base position); a view
    /// changes it on top of the confirmed items (see ItemCollection).
    private mutating func modifyItem<Result>(_ id: Dot, in collection: String, make: () -> CollectionItem,
                                             _ body: (inout CollectionItem) -> Result) -> Result {
        // `make` is not optional: an optional closure escapes, and what it captures would be boxed on the heap.
        let inView = isView
        return collections[collection, default: ItemCollection()].modifyItem(id, onTop: inView, make: make, body)
    }

    /// Records a dot as seen and empty (a rejected op), so it never comes back.
    public mutating func markSeen(_ dot: Dot) {
        context.insert(dot)
    }

    /// Joins one element's state into this one. Returns whether anything changed.
    /// The element's hashes before and after are worked out where it lies,
    /// in the search that finds it for the join.
    @discardableResult
    public mutating func join(_ element: SegmentElement) -> Bool {
        var unread = ConflictChange()
        return join(element, readingConflict: false, &unread)
    }

    /// Whether a joined element was in conflict (`isInConflict`) before the
    /// join and is after it.
    struct ConflictChange {
        var before = false
        var after = false
    }

    /// `join`, reading whether the element is in conflict before and after it
    /// where the join finds the element (when `readingConflict`), so that a
    /// device counting new conflicts need not search for it twice more.
    mutating func join(_ element: SegmentElement, readingConflict: Bool, _ conflict: inout ConflictChange) -> Bool {
        let hashing = tracksDigest
        var before: ContentHash128?, after: ContentHash128?
        let changed: Bool
        switch element {
        case .creation(let record):
            if let existing = creation, existing.dot <= record.dot { return false }
            if hashing {
                before = creation.map { ElementHasher.digest(creation: $0) }
                after = ElementHasher.digest(creation: record)
            }
            creation = record
            changed = true
        case .field(let name, let register):
            let slot = fields.slot(of: name)
            if slot.found {
                changed = fields.modifyValue(at: slot.index) { mine in
                    let old = hashing ? ElementHasher.digest(field: name, register: mine) : nil
                    if readingConflict { conflict.before = mine.isConflict }
                    guard mine.join(register) else {
                        conflict.after = conflict.before
                        return false
                    }
                    before = old
                    if hashing { after = ElementHasher.digest(field: name, register: mine) }
                    if readingConflict { conflict.after = mine.isConflict }
                    return true
                }
            } else {
                if hashing { after = ElementHasher.digest(field: name, register: register) }
                if readingConflict { conflict = ConflictChange(before: false, after: register.isConflict) }
                fields.setValue(register, for: name, at: slot)
                changed = true
            }
        case .logEntry(let log, let entry):
            // Added only when absent, so there is no hash before.
            changed = logs[log, default: AppendLog()].add(entry)
            if changed, hashing { after = ElementHasher.digest(log: log, entry: entry) }
        case .item(let collection, let item):
            var inserted = false
            let joined = modifyItem(item.id, in: collection, make: {
                inserted = true
                return item
            }) { mine in
                let old = hashing && !inserted ? ElementHasher.digest(collection: collection, item: mine) : nil
                if readingConflict { conflict.before = !inserted && mine.isInConflict }
                let joined = mine.join(item)
                if readingConflict { conflict.after = mine.isInConflict }
                if joined || inserted {
                    before = old
                    if hashing { after = ElementHasher.digest(collection: collection, item: mine) }
                }
                return joined
            }
            changed = joined || inserted
        }
        if changed, hashing { moveDigest(from: before, to: after) }
        return changed
    }

    /// Joins a causal context (that of a delta or snapshot).
    public mutating func join(context other: CausalContext) {
        context.join(other)
    }

    /// Joins a causal context less one replica's dots (see `ClientReplica.apply`).
    mutating func join(context other: CausalContext, leavingOut replica: ReplicaID) {
        context.join(other, leavingOut: replica)
    }

    /// Joins a whole state of the same segment and epoch.
    public mutating func join(_ other: SegmentState) {
        context.join(other.context)
        for element in other.elements { join(element) }
    }

    /// The element stored under a key, if any.
    public func element(_ key: ElementKey) -> SegmentElement? {
        switch key {
        case .creation:
            return creation.map { .creation($0) }
        case .field(let name):
            return fields[name].map { .field(name: name, register: $0) }
        case .logEntry(let log, let dot):
            return logs[log]?[dot: dot].map { .logEntry(log: log, entry: $0) }
        case .item(let collection, let id):
            return collections[collection]?[id].map { .item(collection: collection, item: $0) }
        }
    }

    /// Every element, in canonical order.
    public var elements: [SegmentElement] {
        var result: [SegmentElement] = []
        // Counted first: a segment's list grew from empty, reallocating as it filled.
        result.reserveCapacity((creation == nil ? 0 : 1) + fields.count + logs.values.reduce(0) { $0 + $1.count }
                               + collections.values.reduce(0) { $0 + $1.itemCountUpperBound })
        if let creation { result.append(.creation(creation)) }
        for (name, register) in fields { result.append(.field(name: name, register: register)) }
        for (log, entries) in logs {
            for entry in entries.entries { result.append(.logEntry(log: log, entry: entry)) }
        }
        for (collection, items) in collections {
            for item in items.items { result.append(.item(collection: collection, item: item)) }
        }
        return result
    }

    /// Removes a value's effect for an erasure-free re-snapshot: drops everything.
    public mutating func removeAll() {
        context = CausalContext()
        creation = nil
        fields = [:]
        logs = [:]
        collections = [:]
        elementDigest = .zero
    }
}

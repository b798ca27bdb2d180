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
        let before = tracksDigest && !context.contains(op.dot) ? elementHash(Self.elementKey(of: op)) : nil
        return apply(op, elementHashBefore: before).outcome
    }

    /// `apply` for a store that keeps each element's content hash: `before`
    /// is the hash of the element the op changes (nil: there is none yet), so
    /// only the changed element is hashed. Returns the outcome and that hash
    /// (nil when nothing changed, or when the state keeps no digest).
    mutating func apply(_ op: SyncOperation, elementHashBefore before: ContentHash128?) -> (outcome: ApplyOutcome, after: ContentHash128?) {
        guard !context.contains(op.dot) else { return (.duplicate, nil) }
        let outcome = merge(op)
        guard tracksDigest, case .applied(let changed?) = outcome else { return (outcome, nil) }
        let after = elementHash(changed)
        if let before { elementDigest = elementDigest - before }
        if let after { elementDigest = elementDigest + after }
        return (outcome, after)
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

    private mutating func updateDigest(_ key: ElementKey, before: ContentHash128?) {
        guard tracksDigest else { return }
        if let before { elementDigest = elementDigest - before }
        if let after = elementHash(key) { elementDigest = elementDigest + after }
    }

    private mutating func merge(_ op: SyncOperation) -> ApplyOutcome {
        context.insert(op.dot)
        switch op.payload {
        case .createHousehold:
            let record = CreationRecord(dot: op.dot, stamp: op.stamp, author: op.author)
            // Two creations of one ID never both land on the server (it accepts
            // only unseen IDs); the smaller dot wins so that replicas still agree.
            if let existing = creation, existing.dot < record.dot { return .applied(element: nil) }
            creation = record
            return .applied(element: .creation)
        case .set(let field, let value, _):
            let write = RegisterValue(dot: op.dot, stamp: op.stamp, author: op.author, value: value)
            let changed = fields[field, default: MultiValueRegister()].apply(write, context: op.context)
            return .applied(element: changed ? .field(field) : nil)
        case .append(let log, let body):
            let entry = LogEntry(dot: op.dot, stamp: op.stamp, author: op.author, body: body)
            if isView { logs[log, default: AppendLog()].addOnTop(entry) } else { logs[log, default: AppendLog()].add(entry) }
            return .applied(element: .logEntry(log: log, dot: op.dot))
        case .insert(let collection, let position, let text):
            let value = RegisterValue(dot: op.dot, stamp: op.stamp, author: op.author, value: text)
            modifyItem(op.dot, in: collection) { item in
                item.setBasePosition(position)
                item.applyText(value, context: op.context)
            }
            return .applied(element: .item(collection: collection, id: op.dot))
        case .edit(let collection, let id, let field, let value):
            let write = RegisterValue(dot: op.dot, stamp: op.stamp, author: op.author, value: value)
            modifyItem(id, in: collection) { item in
                switch field {
                case .text: item.applyText(write, context: op.context)
                case .status: item.applyStatus(write, context: op.context)
                }
            }
            return .applied(element: .item(collection: collection, id: id))
        case .move(let collection, let id, let position):
            let write = RegisterValue(dot: op.dot, stamp: op.stamp, author: op.author, value: position)
            modifyItem(id, in: collection) { $0.applyMove(write, context: op.context) }
            return .applied(element: .item(collection: collection, id: id))
        case .remove(let collection, let id):
            modifyItem(id, in: collection) { $0.applyRemove(op.dot, context: op.context) }
            return .applied(element: .item(collection: collection, id: id))
        }
    }

    /// Changes an item of a collection where it lies (an item an op names
    /// before its insert arrives starts without a base position); a view
    /// changes it on top of the confirmed items (see ItemCollection).
    private mutating func modifyItem<Result>(_ id: Dot, in collection: String, make: (() -> CollectionItem)? = nil,
                                             _ body: (inout CollectionItem) -> Result) -> Result {
        let inView = isView
        return collections[collection, default: ItemCollection()].modifyItem(id, onTop: inView,
                                                                             make: make ?? { CollectionItem(id: id, basePosition: nil) }, body)
    }

    /// Records a dot as seen and empty (a rejected op), so it never comes back.
    public mutating func markSeen(_ dot: Dot) {
        context.insert(dot)
    }

    /// Joins one element's state into this one. Returns whether anything changed.
    @discardableResult
    public mutating func join(_ element: SegmentElement) -> Bool {
        let key = element.key
        let before = tracksDigest ? elementHash(key) : nil
        let changed = joinElement(element)
        if changed { updateDigest(key, before: before) }
        return changed
    }

    private mutating func joinElement(_ element: SegmentElement) -> Bool {
        switch element {
        case .creation(let record):
            if let existing = creation, existing.dot <= record.dot { return false }
            creation = record
            return true
        case .field(let name, let register):
            if let changed = fields.update(name, { $0.join(register) }) { return changed }
            fields[name] = register
            return true
        case .logEntry(let log, let entry):
            return logs[log, default: AppendLog()].add(entry)
        case .item(let collection, let item):
            var inserted = false
            let changed = modifyItem(item.id, in: collection, make: { inserted = true; return item }) { $0.join(item) }
            return changed || inserted
        }
    }

    /// Joins a causal context (that of a delta or snapshot).
    public mutating func join(context other: CausalContext) {
        context.join(other)
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

/// A map kept as one array sorted by key, for the small maps held by the tens
/// of thousands: a segment's fields, logs and collections, the server's
/// per-element change metadata, a device's segment states (decision 33).
///
/// A dictionary's storage costs a header, a bitmap and up to twice the
/// buckets it fills, and every lookup hashes the key with SipHash; for the
/// one to a few hundred entries these maps hold, a binary search over a dense
/// array is smaller and faster. Iteration is in key order, so callers
/// need not sort the keys for a canonical order. Lookups are O(log n),
/// inserts and removals O(n).
public struct SortedMap<Key: Comparable & Hashable, Value> {
    public typealias Element = (key: Key, value: Value)

    /// A struct, not a tuple: code generic over tuples copies whole entries
    /// through runtime witnesses even to read a key.
    fileprivate struct Entry {
        var key: Key
        var value: Value
    }

    /// One array of pairs: one heap object per map.
    private var entries: [Entry] = []

    public init() {}

    /// A map of these pairs; a later pair replaces an earlier one with the same key.
    public init<S: Sequence>(_ pairs: S) where S.Element == (Key, Value) {
        // Sort once (stable, so the last of equal keys is last) instead of inserting one by one.
        let sorted = pairs.enumerated().sorted { ($0.element.0, $0.offset) < ($1.element.0, $1.offset) }
        entries.reserveCapacity(sorted.count)
        for (_, (key, value)) in sorted {
            if let last = entries.last, last.key == key { entries[entries.count - 1].value = value } else { entries.append(Entry(key: key, value: value)) }
        }
    }

    public var count: Int { entries.count }
    public var isEmpty: Bool { entries.isEmpty }

    // Closures, not key paths (`map(\.key)`): through the opaque result a key
    // path is not folded away, and each element read went through the
    // runtime's key-path projection, several hundred instructions.

    /// The keys in ascending order (a view: nothing is copied until read).
    public var keys: some RandomAccessCollection<Key> { entries.lazy.map { $0.key } }
    /// The values in the order of their keys (a view).
    public var values: some RandomAccessCollection<Value> { entries.lazy.map { $0.value } }

    public mutating func reserveCapacity(_ capacity: Int) { entries.reserveCapacity(capacity) }

    /// Where `key` is, or where it would be inserted.
    @inline(__always)
    private func position(of key: Key) -> (index: Int, found: Bool) {
        // Keys are read in place: taking whole entries would copy (and retain)
        // each value the search passes, which for a segment state is six references.
        entries.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress, buffer.count > 0 else { return (0, false) }
            let count = buffer.count
            if base[count - 1].key < key { return (count, false) }  // new keys mostly come last
            var low = 0
            var high = count
            while low < high {
                let middle = (low + high) / 2
                if base[middle].key < key { low = middle + 1 } else { high = middle }
            }
            return (low, low < count && base[low].key == key)
        }
    }

    public func contains(_ key: Key) -> Bool { position(of: key).found }

    public subscript(key: Key) -> Value? {
        get {
            let (index, found) = position(of: key)
            return found ? entries[index].value : nil
        }
        set {
            let (index, found) = position(of: key)
            switch (found, newValue) {
            case (true, let value?): entries[index].value = value
            case (true, nil): entries.removeMoving(at: index)
            case (false, let value?): entries.insertMoving(Entry(key: key, value: value), at: index)
            case (false, nil): break
            }
        }
        // Mutation through the optional (`map[key]?.change()`): the value is
        // moved out and back, so its own buffers stay uniquely referenced, but
        // the entry array shifts twice (O(n)); hot paths use `update` instead.
        _modify {
            let (index, found) = position(of: key)
            var value = found ? entries.removeMoving(at: index).value : nil
            defer {
                if let value { entries.insertMoving(Entry(key: key, value: value), at: index) }
            }
            yield &value
        }
    }

    /// The value for `key`, inserted as `defaultValue` first if absent, for
    /// mutation in place (the value's own buffers stay uniquely referenced).
    public subscript(key: Key, default defaultValue: @autoclosure () -> Value) -> Value {
        get { self[key] ?? defaultValue() }
        _modify {
            let (index, found) = position(of: key)
            if !found { entries.insertMoving(Entry(key: key, value: defaultValue()), at: index) }
            yield &entries[index].value
        }
    }

    /// Changes the value for `key` in place, or inserts `make()` when the key
    /// is absent: one search either way.
    @inline(__always)
    public mutating func updateOrInsert(_ key: Key, update: (inout Value) -> Void, insert make: () -> Value) {
        let (index, found) = position(of: key)
        if found { update(&entries[index].value) } else { entries.insertMoving(Entry(key: key, value: make()), at: index) }
    }

    /// Where `key` is or would go, for a read and a later write with one
    /// search (`value(at:)`, `setValue(_:for:at:)`); valid until the map changes.
    @inline(__always)
    func slot(of key: Key) -> (index: Int, found: Bool) { position(of: key) }

    @inline(__always)
    func value(at index: Int) -> Value { entries[index].value }

    /// Changes the value at an index from `slot(of:)` (a found key) in place.
    @inline(__always)
    mutating func modifyValue<Result, Failure: Error>(at index: Int, _ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        try body(&entries[index].value)
    }

    /// Sets the value at a slot from `slot(of:)`: in place when the key was found, inserted there otherwise.
    @inline(__always)
    mutating func setValue(_ value: Value, for key: Key, at slot: (index: Int, found: Bool)) {
        if slot.found { entries[slot.index].value = value } else { entries.insertMoving(Entry(key: key, value: value), at: slot.index) }
    }

    /// Reads the value for `key` where it lies (a getter would copy it out,
    /// retaining each of its buffers); nil when the key is absent.
    @inline(__always)
    public func withValue<Result>(_ key: Key, _ body: (borrowing Value) throws -> Result) rethrows -> Result? {
        let (index, found) = position(of: key)
        guard found else { return nil }
        return try withValue(at: index, body)
    }

    /// Reads the value at an index from `slot(of:)` (a found key) where it lies.
    @inline(__always)
    func withValue<Result>(at index: Int, _ body: (borrowing Value) throws -> Result) rethrows -> Result {
        try entries.withUnsafeBufferPointer { buffer in
            // Through a pointer to the value itself: `buffer[index].value` loaded a copy of the
            // whole entry first (for a segment state, a retain of each of its buffers).
            let value = (UnsafeRawPointer(buffer.baseAddress! + index) + Self.valueOffset).assumingMemoryBound(to: Value.self)
            return try body(value.pointee)
        }
    }

    private static var valueOffset: Int { MemoryLayout<Entry>.offset(of: \Entry.value)! }

    /// Changes the value for an existing key in place; returns nil (and does
    /// nothing) when the key is absent.
    @discardableResult
    public mutating func update<Result>(_ key: Key, _ body: (inout Value) throws -> Result) rethrows -> Result? {
        let (index, found) = position(of: key)
        guard found else { return nil }
        return try body(&entries[index].value)
    }
}

extension SortedMap: Sequence {
    public struct Iterator: IteratorProtocol {
        fileprivate let map: SortedMap
        fileprivate var index = 0
        public mutating func next() -> Element? {
            guard index < map.entries.count else { return nil }
            defer { index += 1 }
            return (map.entries[index].key, map.entries[index].value)
        }
    }

    public func makeIterator() -> Iterator { Iterator(map: self) }
    public var underestimatedCount: Int { count }
}

extension SortedMap: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (Key, Value)...) {
        // `[:]` makes every new segment's maps: no sort for nothing.
        if elements.isEmpty { self.init() } else { self.init(elements) }
    }
}

extension SortedMap: Equatable where Value: Equatable {
    public static func == (lhs: SortedMap, rhs: SortedMap) -> Bool {
        lhs.entries.elementsEqual(rhs.entries) { $0.key == $1.key && $0.value == $1.value }
    }
}

extension SortedMap: Hashable where Value: Hashable {
    public func hash(into hasher: inout Hasher) {
        hasher.combine(entries.count)
        for entry in entries {
            hasher.combine(entry.key)
            hasher.combine(entry.value)
        }
    }
}

extension SortedMap: Sendable where Key: Sendable, Value: Sendable {}
extension SortedMap.Entry: Sendable where Key: Sendable, Value: Sendable {}

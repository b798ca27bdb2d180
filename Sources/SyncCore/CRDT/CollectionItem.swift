/// One item of a collection (a goal, an agreement, a deployment): a small record
/// of registers, ordered by a position key (DESIGN §3).
///
/// Liveness is decided by dots, not by a flag: the item is live while one of
/// its add/edit dots is not covered by the contexts of its removes, and it is
/// flagged (edited while removed) when it is live and a remove exists that no
/// add/edit had seen. Every part is a join plus a filter, so any delivery order
/// gives the same state, and a concurrent edit is never silently dropped.
///
/// Stored compactly, since a server and every device hold each item: a
/// fraction of up to 8 bytes sits inline, and the insert among the writes is
/// a flag. Most items were inserted and never edited, and each of those parts
/// would otherwise be a heap allocation. Every state has one representation,
/// so the synthesized equality and hashing are those of the logical value.
public struct CollectionItem: Hashable, Sendable {
    /// The insert op's dot: the item's ID.
    public let id: Dot
    /// The base fraction's bytes, when it has at most 8 (first byte highest).
    private var inlineBase: UInt64 = 0
    /// The base fraction, when it has more than 8 bytes.
    private var longBase: [UInt8] = []
    public private(set) var text = MultiValueRegister<String>()
    public private(set) var status = MultiValueRegister<String>()
    public private(set) var position = MultiValueRegister<[UInt8]>()
    /// Add/edit dots not covered by any remove, other than the insert's (`id`).
    private var otherWrites: [Dot] = []
    /// Join of the contexts of every add/edit.
    public private(set) var writeCover = VersionVector()
    /// Remove dots not seen by any add/edit.
    public private(set) var removes: [Dot] = []
    /// Join of the contexts of every remove.
    public private(set) var removeCover = VersionVector()
    /// 0...8: the base fraction is inline with this many bytes; `longBaseMark`: in
    /// `longBase`; `noBase`: none yet.
    private var baseLength: UInt8 = Self.noBase
    /// Whether the insert is among the writes.
    private var insertIsWrite = false

    private static let noBase: UInt8 = 0xFF
    private static let longBaseMark: UInt8 = 0xFE

    public init(id: Dot, basePosition: [UInt8]?) {
        self.id = id
        if let basePosition { storeBase(basePosition) }
    }

    init(id: Dot, basePosition: [UInt8]?, text: MultiValueRegister<String>, status: MultiValueRegister<String>,
         position: MultiValueRegister<[UInt8]>, writes: [Dot], writeCover: VersionVector,
         removes: [Dot], removeCover: VersionVector) {
        self.id = id
        if let basePosition { storeBase(basePosition) }
        self.text = text
        self.status = status
        self.position = position
        insertIsWrite = writes.contains(id)
        // Sorted, without repeats: a JSON body may repeat a dot; one form per state.
        otherWrites = writes.filter { $0 != id }.sortedUnique()
        self.writeCover = writeCover
        self.removes = removes.sortedUnique()
        self.removeCover = removeCover
        normalize()
    }

    /// The fraction chosen at insert; used when no move survives. Nil only while
    /// an edit has arrived before its insert (any delivery order must converge).
    public var basePosition: [UInt8]? { withBaseBytes { $0.map(Array.init) } }

    /// The base fraction's bytes where they lie (nil: no insert yet), for
    /// readers that need no array of their own: a short fraction is inline.
    @inline(__always)
    private func withBaseBytes<Result>(_ body: (UnsafeBufferPointer<UInt8>?) -> Result) -> Result {
        withUnsafePointer(to: self) { Self.withBaseBytes(of: $0, body) }
    }

    /// The same through a pointer, field by field (see `sortKey(of:)`).
    @inline(__always)
    private static func withBaseBytes<Result>(of item: UnsafePointer<CollectionItem>, _ body: (UnsafeBufferPointer<UInt8>?) -> Result) -> Result {
        let length = item.pointer(to: \.baseLength)!.pointee
        switch length {
        case noBase: return body(nil)
        case longBaseMark: return item.pointer(to: \.longBase)!.pointee.withUnsafeBufferPointer { body($0) }
        case 0: return [UInt8]().withUnsafeBufferPointer { body($0) }  // never stored: inserts need a position
        default:
            let inline = item.pointer(to: \.inlineBase)!.pointee
            var bytes: (UInt64, UInt64) = (0, 0)  // room for 8 bytes, first byte highest
            return withUnsafeMutableBytes(of: &bytes) { raw in
                for index in 0..<Int(length) { raw[index] = UInt8(truncatingIfNeeded: inline >> UInt64(56 - 8 * index)) }
                return body(UnsafeBufferPointer(start: raw.baseAddress!.assumingMemoryBound(to: UInt8.self), count: Int(length)))
            }
        }
    }

    /// Whether the insert has arrived (`basePosition` is not nil), without building the fraction.
    var hasBasePosition: Bool { baseLength != Self.noBase }

    private mutating func storeBase(_ fraction: [UInt8]) {
        if fraction.count <= 8 {
            inlineBase = fraction.enumerated().reduce(0) { $0 | UInt64($1.element) << UInt64(56 - 8 * $1.offset) }
            longBase = []
            baseLength = UInt8(fraction.count)
        } else {
            inlineBase = 0
            longBase = fraction
            baseLength = Self.longBaseMark
        }
    }

    /// Add/edit dots not covered by any remove, sorted.
    public var writes: [Dot] {
        guard insertIsWrite else { return otherWrites }
        var all = otherWrites
        all.insertMoving(id, at: all.sortedPosition(of: id) { $0 })
        return all
    }

    /// Feeds `basePosition` (or its absence) to a hasher without building the array.
    func hashBasePosition(into hasher: inout ElementHasher) {
        withBaseBytes { bytes in
            if let bytes { hasher.add(bytes) } else { hasher.add(UInt64.max) }
        }
    }

    /// Feeds `writes` (count, then each dot in order) to a hasher without building the array.
    func hashWrites(into hasher: inout ElementHasher) {
        hasher.add(UInt64(otherWrites.count + (insertIsWrite ? 1 : 0)))
        var insertPending = insertIsWrite
        for dot in otherWrites {
            if insertPending, id < dot {
                hasher.add(id)
                insertPending = false
            }
            hasher.add(dot)
        }
        if insertPending { hasher.add(id) }
    }

    /// The usual state of the writes: the insert alone (the codec writes it as a flag).
    var writesAreJustTheInsert: Bool { insertIsWrite && otherWrites.isEmpty }

    /// The item without the register values written by `dots` (for a device
    /// that applies those ops itself, see ServerSegment.leavingOut).
    func leavingOut(_ dots: Set<Dot>) -> CollectionItem {
        func without<V>(_ register: MultiValueRegister<V>) -> MultiValueRegister<V> {
            MultiValueRegister(covered: register.covered, values: register.values.filter { !dots.contains($0.dot) })
        }
        var item = self
        item.text = without(text)
        item.status = without(status)
        item.position = without(position)
        return item
    }

    public var isLive: Bool { insertIsWrite || !otherWrites.isEmpty }
    /// Live, but a remove exists that the surviving edits had not seen.
    public var isFlagged: Bool { isLive && !removes.isEmpty }
    /// One of the conflicts a device shows: flagged, or live with concurrent texts.
    public var isInConflict: Bool { isLive && (!removes.isEmpty || text.isConflict) }

    /// The current fraction: the winning move, else the insert position.
    public var fraction: [UInt8] { position.winner?.value ?? basePosition ?? [] }
    /// The item's key in position order: its fraction, then its ID.
    public var sortKey: [UInt8] { withUnsafePointer(to: self) { Self.sortKey(of: $0) } }

    /// The same, read through a pointer field by field: read whole through a
    /// pointer, an item is copied (a retain of each of its buffers) when a call
    /// that might write memory comes before its last use, as building the key
    /// does (ItemCollection.liveOrder reads every live item this way).
    @inline(__always)
    static func sortKey(of item: UnsafePointer<CollectionItem>) -> [UInt8] {
        let id = item.pointer(to: \.id)!.pointee
        if let moved = item.pointer(to: \.position.values)!.pointee.first?.value { return PositionKey.sortKey(fraction: moved, item: id) }
        return withBaseBytes(of: item) { PositionKey.sortKey(fraction: $0 ?? UnsafeBufferPointer(start: nil, count: 0), item: id) }
    }

    mutating func recordWrite(_ dot: Dot, context: VersionVector) {
        writeCover.join(context)
        if dot == id {
            insertIsWrite = true
        } else if !otherWrites.contains(dot) {
            otherWrites.append(dot)
            otherWrites.sort()
        }
        normalize()
    }

    mutating func setBasePosition(_ fraction: [UInt8]) {
        if baseLength == Self.noBase { storeBase(fraction) }
    }

    // `consuming`: each write is moved into its register (MultiValueRegister.apply).
    mutating func applyText(_ value: consuming RegisterValue<String>, context: VersionVector) {
        let dot = value.dot
        text.apply(value, context: context)
        recordWrite(dot, context: context)
    }

    mutating func applyStatus(_ value: consuming RegisterValue<String>, context: VersionVector) {
        let dot = value.dot
        status.apply(value, context: context)
        recordWrite(dot, context: context)
    }

    mutating func applyMove(_ value: consuming RegisterValue<[UInt8]>, context: VersionVector) {
        let dot = value.dot
        position.apply(value, context: context)
        recordWrite(dot, context: context)
    }

    mutating func applyRemove(_ dot: Dot, context: VersionVector) {
        removeCover.join(context)
        if !removes.contains(dot) { removes.append(dot); removes.sort() }
        normalize()
    }

    /// State join of two copies of the same item. Returns false when nothing
    /// changed, true when something may have (a part that came in can be
    /// filtered out again): it gates only the work a change needs.
    @discardableResult
    mutating func join(_ other: CollectionItem) -> Bool {
        var changed = false
        if baseLength == Self.noBase, let base = other.basePosition {
            storeBase(base)
            changed = true
        }
        if text.join(other.text) { changed = true }
        if status.join(other.status) { changed = true }
        if position.join(other.position) { changed = true }
        if !writeCover.includes(other.writeCover) {
            writeCover.join(other.writeCover)
            changed = true
        }
        if !removeCover.includes(other.removeCover) {
            removeCover.join(other.removeCover)
            changed = true
        }
        if other.insertIsWrite, !insertIsWrite {
            insertIsWrite = true
            changed = true
        }
        if !other.otherWrites.allSatisfy(otherWrites.sortedContains) {
            otherWrites = Array(Set(otherWrites).union(other.otherWrites)).sorted()
            changed = true
        }
        if !other.removes.allSatisfy(removes.sortedContains) {
            removes = Array(Set(removes).union(other.removes)).sorted()
            changed = true
        }
        // An unchanged item is normalized already.
        if changed { normalize() }
        return changed
    }

    /// The filters: a remove deletes the writes (and the values) its author had
    /// seen; an edit that had seen a remove cancels it ("keep this item").
    private mutating func normalize() {
        if insertIsWrite, removeCover.contains(id) { insertIsWrite = false }
        if !otherWrites.isEmpty { otherWrites.removeAll { removeCover.contains($0) } }
        if !removes.isEmpty { removes.removeAll { writeCover.contains($0) } }
        if !removeCover.isEmpty {
            text.prune(by: removeCover)
            status.prune(by: removeCover)
            position.prune(by: removeCover)
        }
    }
}

extension CollectionItem: Codable {
    // The JSON form names the logical parts, as before the compact storage.
    private enum CodingKeys: String, CodingKey {
        case id, basePosition, text, status, position, writes, writeCover, removes, removeCover
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(id: try container.decode(Dot.self, forKey: .id),
                  basePosition: try container.decodeIfPresent([UInt8].self, forKey: .basePosition),
                  text: try container.decode(MultiValueRegister<String>.self, forKey: .text),
                  status: try container.decode(MultiValueRegister<String>.self, forKey: .status),
                  position: try container.decode(MultiValueRegister<[UInt8]>.self, forKey: .position),
                  writes: try container.decode([Dot].self, forKey: .writes),
                  writeCover: try container.decode(VersionVector.self, forKey: .writeCover),
                  removes: try container.decode([Dot].self, forKey: .removes),
                  removeCover: try container.decode(VersionVector.self, forKey: .removeCover))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encodeIfPresent(basePosition, forKey: .basePosition)
        try container.encode(text, forKey: .text)
        try container.encode(status, forKey: .status)
        try container.encode(position, forKey: .position)
        try container.encode(writes, forKey: .writes)
        try container.encode(writeCover, forKey: .writeCover)
        try container.encode(removes, forKey: .removes)
        try container.encode(removeCover, forKey: .removeCover)
    }
}

/// A collection: items keyed by ID, shown in position order.
///
/// Like `AppendLog`, a device's view changes items on top of the confirmed
/// ones (`setOnTop`) rather than copying every item of the collection.
public struct ItemCollection: Hashable, Sendable {
    /// Items sorted by ID: an array rather than a dictionary, whose buckets
    /// would cost about twice the items they hold. Shared with the state
    /// this collection was copied from, in a view.
    private var base: [CollectionItem] = []
    /// Items a view added or changed, sorted by ID; each hides its `base` copy.
    private var onTop: [CollectionItem] = []

    public init() {}

    /// Every item, live or removed, sorted by ID.
    public var items: [CollectionItem] {
        guard !onTop.isEmpty else { return base }
        var merged = base
        for item in onTop {
            let index = Self.position(of: item.id, in: merged)
            if index < merged.count, merged[index].id == item.id { merged[index] = item } else { merged.insertMoving(item, at: index) }
        }
        return merged
    }

    /// At least the number of items, live or removed, in O(1): exact unless a
    /// view changed some of them on top. For sizing a list of them.
    var itemCountUpperBound: Int { base.count + onTop.count }

    /// How many items are live.
    public var liveCount: Int {
        var count = 0
        forEachLive { _ in count += 1 }
        return count
    }

    /// Live items in position order.
    public var liveItems: [CollectionItem] { liveOrder.compactMap { self[$0.id] } }

    /// A live item's place: its ID and sort key.
    public struct Place: Sendable {
        public var id: Dot
        public var sortKey: [UInt8]
    }

    /// The live items' IDs and sort keys in position order. Items are read
    /// where they lie: a copy of an item retains a dozen buffers, and the
    /// device asks this for every insert and removal a worker makes.
    public var liveOrder: [Place] {
        var places: [Place] = []
        places.reserveCapacity(itemCountUpperBound)  // grown from empty, it was reallocated as it filled
        // Read field by field through the pointer (`CollectionItem.sortKey(of:)`): read whole, each
        // item was copied, since growing the list or the key might write memory while it is read.
        forEachLive { places.append(Place(id: $0.pointer(to: \.id)!.pointee, sortKey: CollectionItem.sortKey(of: $0))) }
        // Each sort key is built once: built in the comparison, a sort made two arrays per comparison.
        places.sort { PositionKey.precedes($0.sortKey, $1.sortKey) }
        return places
    }

    /// Calls `body` with a pointer to each live item where it lies, in no
    /// particular order (an item changed on top hides its shared copy).
    @inline(__always)
    private func forEachLive(_ body: (UnsafePointer<CollectionItem>) -> Void) {
        onTop.withUnsafeBufferPointer { top in
            for index in top.indices where top[index].isLive { body(top.baseAddress! + index) }
        }
        base.withUnsafeBufferPointer { items in
            for index in items.indices where items[index].isLive {
                if !onTop.isEmpty, Self.withItem(items[index].id, in: onTop, { _ in true }) != nil { continue }
                body(items.baseAddress! + index)
            }
        }
    }

    public internal(set) subscript(id: Dot) -> CollectionItem? {
        get { withItem(id) { copy $0 } }
        set {
            flatten()
            let index = Self.position(of: id, in: base)
            let present = index < base.count && base[index].id == id
            switch (newValue, present) {
            case (let item?, true): base[index] = item
            case (let item?, false): base.insertGrowingByAQuarter(item, at: index)
            case (nil, true): base.removeMoving(at: index)
            case (nil, false): break
            }
        }
    }

    /// Reads the item with this ID where it lies (no copy of its registers).
    func withItem<Result>(_ id: Dot, _ body: (borrowing CollectionItem) -> Result) -> Result? {
        if !onTop.isEmpty, let found = Self.withItem(id, in: onTop, body) { return found }
        return Self.withItem(id, in: base, body)
    }

    private static func withItem<Result>(_ id: Dot, in items: [CollectionItem], _ body: (borrowing CollectionItem) -> Result) -> Result? {
        let index = position(of: id, in: items)
        guard index < items.count else { return nil }
        return items.withUnsafeBufferPointer { $0[index].id == id ? body($0[index]) : nil }
    }

    /// Changes the item with this ID in place, or `make()` first when there is
    /// none. In a view (`onTop`) the shared items are never written: an item
    /// from them is copied on top first. Changing an item where it lies keeps
    /// its buffers uniquely referenced; a copy out and back would copy each
    /// buffer the change touches.
    mutating func modifyItem<Result>(_ id: Dot, onTop inView: Bool, make: () -> CollectionItem,
                                     _ body: (inout CollectionItem) -> Result) -> Result {
        if inView {
            let index = Self.position(of: id, in: onTop)
            if index < onTop.count, onTop[index].id == id { return body(&onTop[index]) }
            var item = Self.withItem(id, in: base, { copy $0 }) ?? make()
            let result = body(&item)
            onTop.insertMoving(item, at: index)
            return result
        }
        flatten()
        let index = Self.position(of: id, in: base)
        if index < base.count, base[index].id == id { return body(&base[index]) }
        var item = make()
        let result = body(&item)
        base.insertGrowingByAQuarter(item, at: index)
        return result
    }

    /// Adds or replaces an item without touching the shared ones (for views).
    mutating func setOnTop(_ item: CollectionItem) {
        let index = Self.position(of: item.id, in: onTop)
        if index < onTop.count, onTop[index].id == item.id { onTop[index] = item } else { onTop.insertMoving(item, at: index) }
    }

    /// A plain write to a view: its items on top become its own.
    private mutating func flatten() {
        if !onTop.isEmpty { base = items; onTop = [] }
    }

    /// Where `id` is or would go.
    private static func position(of id: Dot, in items: [CollectionItem]) -> Int { items.sortedPosition(of: id) { $0.id } }

    // Equal items are equal collections, however they are split.
    public static func == (lhs: ItemCollection, rhs: ItemCollection) -> Bool { lhs.items == rhs.items }
    public func hash(into hasher: inout Hasher) { hasher.combine(items) }
}

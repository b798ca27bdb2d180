/// The state of one segment (one purpose of one household, at one epoch): its
/// causal context plus its fields, logs and collections (DESIGN §2–§3).
public struct SegmentState: Hashable, Sendable {
    public let key: SegmentKey
    public let epoch: UInt32
    /// Every dot this state reflects, including rejected ones (seen and empty).
    public internal(set) var context = CausalContext()
    /// The createHousehold op, in a REGIE segment.
    public internal(set) var creation: CreationRecord? {
        get { creationStorage.first }
        set { creationStorage = newValue.map { [$0] } ?? [] }
    }
    /// Zero or one record. An array, not an optional: only REGIE segments
    /// have one, and inline it would cost every segment 40 bytes.
    private var creationStorage: [CreationRecord] = []
    // Sorted maps, not dictionaries: a segment has a few of each, and a
    // plan has tens of thousands of segments (see SortedMap).
    public internal(set) var fields: SortedMap<String, MultiValueRegister<String>> = [:]
    public internal(set) var logs: SortedMap<String, AppendLog> = [:]
    public internal(set) var collections: SortedMap<String, ItemCollection> = [:]
    /// The sum of every element's content hash, kept up to date by every
    /// mutation, so the state hash costs O(1) instead of a full encoding.
    public internal(set) var elementDigest = ContentHash128.zero
    /// Off for the client's pending overlays: views are never hashed.
    var tracksDigest = true
    /// A device's view (confirmed + pending): it shares the confirmed
    /// state's logs and goal lists and adds on top of them (see AppendLog).
    private(set) var isView = false

    public init(key: SegmentKey, epoch: UInt32) {
        self.key = key
        self.epoch = epoch
    }

    public var isEmpty: Bool {
        creation == nil && fields.isEmpty && logs.isEmpty && collections.isEmpty
    }

    /// This state as the start of a device's view: never hashed, and its
    /// pending ops go on top of the containers it shares with this state.
    var asView: SegmentState {
        var view = self
        view.tracksDigest = false
        view.isView = true
        return view
    }

    /// The winning value of a field, if any.
    public func value(of field: String) -> String? { fields[field]?.winner?.value }
}

/// Who created a household, and when.
public struct CreationRecord: Hashable, Sendable, Codable {
    public var dot: Dot
    public var stamp: HLCTimestamp
    public var author: String
    public init(dot: Dot, stamp: HLCTimestamp, author: String) {
        self.dot = dot
        self.stamp = stamp
        self.author = author
    }
}

/// The addressable parts of a segment state. The server stores one row per
/// element (an append never rewrites a whole segment) and a delta is a list of
/// elements.
public enum ElementKey: Hashable, Sendable, Comparable {
    case creation
    case field(String)
    case logEntry(log: String, dot: Dot)
    case item(collection: String, id: Dot)

    var rank: Int {
        switch self {
        case .creation: return 0
        case .field: return 1
        case .logEntry: return 2
        case .item: return 3
        }
    }

    public static func < (lhs: ElementKey, rhs: ElementKey) -> Bool {
        switch (lhs, rhs) {
        case (.field(let a), .field(let b)): return a < b
        case (.logEntry(let la, let da), .logEntry(let lb, let db)): return (la, da.replica, da.counter) < (lb, db.replica, db.counter)
        case (.item(let ca, let ia), .item(let cb, let ib)): return (ca, ia.replica, ia.counter) < (cb, ib.replica, ib.counter)
        default: return lhs.rank < rhs.rank
        }
    }
}

/// One element's state, as carried in deltas and snapshots.
public enum SegmentElement: Hashable, Sendable, Codable {
    case creation(CreationRecord)
    case field(name: String, register: MultiValueRegister<String>)
    case logEntry(log: String, entry: LogEntry)
    case item(collection: String, item: CollectionItem)

    /// The stamp of its latest write (zero for none), which a device's clock observes.
    var newestStamp: HLCTimestamp {
        switch self {
        case .creation(let record): return record.stamp
        case .field(_, let register): return register.values.first?.stamp ?? .zero
        case .logEntry(_, let entry): return entry.stamp
        case .item(_, let item): return item.text.values.first?.stamp ?? .zero
        }
    }

    public var key: ElementKey {
        switch self {
        case .creation: return .creation
        case .field(let name, _): return .field(name)
        case .logEntry(let log, let entry): return .logEntry(log: log, dot: entry.dot)
        case .item(let collection, let item): return .item(collection: collection, id: item.id)
        }
    }
}

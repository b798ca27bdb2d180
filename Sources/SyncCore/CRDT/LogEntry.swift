/// An immutable entry of an append-only log (contact logs, signals, evaluations).
/// A correction is a new entry that references the old one (DESIGN §3).
public struct LogEntry: Hashable, Sendable, Codable {
    public var dot: Dot
    public var stamp: HLCTimestamp
    public var author: String
    public var body: LogEntryBody

    public init(dot: Dot, stamp: HLCTimestamp, author: String, body: LogEntryBody) {
        self.dot = dot
        self.stamp = stamp
        self.author = author
        self.body = body
    }

    /// Log order: (HLC, dot), a total order.
    static func precedes(_ lhs: LogEntry, _ rhs: LogEntry) -> Bool {
        if lhs.stamp != rhs.stamp { return lhs.stamp < rhs.stamp }
        return lhs.dot < rhs.dot
    }
}

/// An append-only log: a grow-only set of entries keyed by dot.
///
/// Kept as an array sorted by dot rather than a dictionary: a log is the
/// bulk of a plan (every contact note), and a dictionary's buckets cost
/// about twice the entries they hold. Lookups are a binary search.
public struct AppendLog: Hashable, Sendable {
    /// Every entry, sorted by dot.
    public private(set) var entries: [LogEntry] = []

    public init() {}

    /// Adds an entry; returns false if it was already there.
    @discardableResult
    public mutating func add(_ entry: LogEntry) -> Bool {
        let index = position(of: entry.dot)
        if index < entries.count, entries[index].dot == entry.dot { return false }
        entries.insertGrowingByAQuarter(entry, at: index)
        return true
    }

    /// The entry with this dot, if the log has it.
    public subscript(dot dot: Dot) -> LogEntry? {
        let index = position(of: dot)
        return index < entries.count && entries[index].dot == dot ? entries[index] : nil
    }

    /// Where `dot` is or would go.
    private func position(of dot: Dot) -> Int { entries.sortedPosition(of: dot) { $0.dot } }

    /// Entries in log order.
    public var ordered: [LogEntry] { entries.sorted(by: LogEntry.precedes) }

    public var count: Int { entries.count }
}

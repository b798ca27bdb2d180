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
public struct AppendLog: Hashable, Sendable {
    public private(set) var entries: [Dot: LogEntry] = [:]

    public init() {}

    /// Adds an entry; returns false if it was already there.
    @discardableResult
    public mutating func add(_ entry: LogEntry) -> Bool {
        guard entries[entry.dot] == nil else { return false }
        entries[entry.dot] = entry
        return true
    }

    /// Entries in log order.
    public var ordered: [LogEntry] { entries.values.sorted(by: LogEntry.precedes) }

    public var count: Int { entries.count }
}

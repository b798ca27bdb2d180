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
///
/// A device's view of a segment (confirmed + its pending ops) starts as a
/// copy of the confirmed state; adding to the copied log would copy every
/// entry of it. A view adds on top instead (`addOnTop`), sharing the
/// confirmed entries; stored and sent states never have entries on top.
public struct AppendLog: Hashable, Sendable {
    /// Shared with the state this log was copied from, in a view.
    private var base: [LogEntry] = []
    /// Entries a view added, sorted by dot; none of them is in `base`.
    private var onTop: [LogEntry] = []

    public init() {}

    /// Every entry, sorted by dot.
    public var entries: [LogEntry] {
        guard !onTop.isEmpty else { return base }
        var merged = base
        for entry in onTop { merged.insertMoving(entry, at: Self.position(of: entry.dot, in: merged)) }
        return merged
    }

    /// Adds an entry; returns false if it was already there.
    @discardableResult
    public mutating func add(_ entry: LogEntry) -> Bool {
        if !onTop.isEmpty { return addOnTop(entry) }
        let index = Self.position(of: entry.dot, in: base)
        if index < base.count, base[index].dot == entry.dot { return false }
        base.insertGrowingByAQuarter(entry, at: index)
        return true
    }

    /// Adds an entry without touching the shared entries (for views).
    @discardableResult
    mutating func addOnTop(_ entry: LogEntry) -> Bool {
        guard self[dot: entry.dot] == nil else { return false }
        onTop.insertMoving(entry, at: Self.position(of: entry.dot, in: onTop))
        return true
    }

    /// The entry with this dot, if the log has it.
    public subscript(dot dot: Dot) -> LogEntry? { withEntry(dot) { copy $0 } }

    /// Reads the entry with this dot where it lies (no copy of its strings).
    func withEntry<Result>(_ dot: Dot, _ body: (borrowing LogEntry) -> Result) -> Result? {
        if let found = Self.withEntry(dot, in: base, body) { return found }
        return onTop.isEmpty ? nil : Self.withEntry(dot, in: onTop, body)
    }

    private static func withEntry<Result>(_ dot: Dot, in entries: [LogEntry], _ body: (borrowing LogEntry) -> Result) -> Result? {
        let index = position(of: dot, in: entries)
        guard index < entries.count else { return nil }
        return entries.withUnsafeBufferPointer { $0[index].dot == dot ? body($0[index]) : nil }
    }

    /// Where `dot` is or would go.
    private static func position(of dot: Dot, in entries: [LogEntry]) -> Int { entries.sortedPosition(of: dot) { $0.dot } }

    /// Entries in log order.
    public var ordered: [LogEntry] { entries.sorted(by: LogEntry.precedes) }

    public var count: Int { base.count + onTop.count }

    // Equal entries are equal logs, however they are split.
    public static func == (lhs: AppendLog, rhs: AppendLog) -> Bool { lhs.entries == rhs.entries }
    public func hash(into hasher: inout Hasher) { hasher.combine(entries) }
}

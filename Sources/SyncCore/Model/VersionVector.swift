/// Replica → highest contiguous counter seen. Kept as a small array sorted by
/// replica: segments have a handful of writers, so this beats a dictionary and
/// its order is already canonical.
public struct VersionVector: Hashable, Sendable, Codable, CustomStringConvertible {
    public struct Entry: Hashable, Sendable, Codable {
        public var replica: ReplicaID
        // The counter in two halves: a UInt64 after the 4-byte replica would be
        // padded to 16 bytes, halves make an entry 12. Vectors are a large part
        // of what a server and a device hold (every register's cover, every op's context).
        private var counterHigh: UInt32
        private var counterLow: UInt32

        public var counter: UInt64 {
            @inline(__always) get { UInt64(counterHigh) << 32 | UInt64(counterLow) }
            @inline(__always) set {
                counterHigh = UInt32(truncatingIfNeeded: newValue >> 32)
                counterLow = UInt32(truncatingIfNeeded: newValue)
            }
        }

        public init(replica: ReplicaID, counter: UInt64) {
            self.replica = replica
            counterHigh = UInt32(truncatingIfNeeded: counter >> 32)
            counterLow = UInt32(truncatingIfNeeded: counter)
        }

        private enum CodingKeys: String, CodingKey { case replica, counter }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.init(replica: try container.decode(ReplicaID.self, forKey: .replica),
                      counter: try container.decode(UInt64.self, forKey: .counter))
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(replica, forKey: .replica)
            try container.encode(counter, forKey: .counter)
        }
    }

    /// Sorted by replica, counters > 0, no duplicates.
    public private(set) var entries: [Entry]

    public init() { entries = [] }

    /// Builds a vector from any entries; duplicates keep the highest counter.
    public init(_ pairs: [(ReplicaID, UInt64)]) {
        entries = []
        for (replica, counter) in pairs { raise(replica, to: counter) }
    }

    init(sortedEntries: [Entry]) { entries = sortedEntries }

    public static let empty = VersionVector()

    public var isEmpty: Bool { entries.isEmpty }

    public subscript(replica: ReplicaID) -> UInt64 {
        for entry in entries {
            if entry.replica == replica { return entry.counter }
            if entry.replica > replica { return 0 }
        }
        return 0
    }

    public func contains(_ dot: Dot) -> Bool {
        dot.counter <= self[dot.replica]
    }

    /// Where a dot stands against this vector.
    enum Advance {
        /// The vector contains it.
        case seen
        /// It was its replica's next counter, and the vector now contains it.
        case raised
        /// It lies beyond its replica's next counter; the vector is unchanged.
        case beyondNext
    }

    /// Raises the dot's replica to the dot when it is that replica's next
    /// counter, in one scan (`contains`, the subscript and `raise` made three).
    mutating func advance(to dot: Dot) -> Advance {
        var index = 0
        while index < entries.count {
            let current = entries[index]
            if current.replica == dot.replica {
                if dot.counter <= current.counter { return .seen }
                guard dot.counter == current.counter + 1 else { return .beyondNext }
                entries[index].counter = dot.counter
                return .raised
            }
            if current.replica > dot.replica { break }
            index += 1
        }
        switch dot.counter {
        case 0: return .seen
        case 1:
            entries.insertMoving(Entry(replica: dot.replica, counter: 1), at: index)
            return .raised
        default: return .beyondNext
        }
    }

    /// Raises one replica's counter (never lowers it).
    public mutating func raise(_ replica: ReplicaID, to counter: UInt64) {
        guard counter > 0 else { return }
        var index = 0
        while index < entries.count {
            let current = entries[index]
            if current.replica == replica {
                if counter > current.counter { entries[index].counter = counter }
                return
            }
            if current.replica > replica { break }
            index += 1
        }
        entries.insertMoving(Entry(replica: replica, counter: counter), at: index)
    }

    /// Whether this vector equals `base` with `replica` raised to `counter`,
    /// worked out without building that vector (the op codec asks it per op).
    func equalsRaised(_ base: VersionVector, _ replica: ReplicaID, to counter: UInt64) -> Bool {
        let raisedIsNew = counter > 0 && base[replica] == 0
        guard entries.count == base.entries.count + (raisedIsNew ? 1 : 0) else { return false }
        var j = 0
        for entry in entries {
            if entry.replica == replica {
                guard entry.counter == max(base[replica], counter) else { return false }
                if !raisedIsNew { j += 1 }
                continue
            }
            guard j < base.entries.count, base.entries[j].replica == entry.replica, base.entries[j].counter == entry.counter else { return false }
            j += 1
        }
        return j == base.entries.count
    }

    /// Whether every dot of `other` is in this vector.
    public func includes(_ other: VersionVector) -> Bool {
        // One walk over both sorted lists (a lookup per entry would be quadratic in the writers).
        var i = 0
        for theirs in other.entries {
            while i < entries.count, entries[i].replica < theirs.replica { i += 1 }
            guard i < entries.count, entries[i].replica == theirs.replica, entries[i].counter >= theirs.counter else { return false }
        }
        return true
    }

    /// Pointwise maximum.
    public mutating func join(_ other: VersionVector) {
        if other.entries.isEmpty { return }
        if entries.isEmpty { entries = other.entries; return }
        // Most joins are one-sided (a write's context covers the register's, or
        // the other way round): keep or share a buffer instead of making one.
        if includes(other) { return }
        if other.includes(self) { entries = other.entries; return }
        var merged: [Entry] = []
        merged.reserveCapacity(max(entries.count, other.entries.count))
        var i = 0, j = 0
        while i < entries.count || j < other.entries.count {
            if j == other.entries.count || (i < entries.count && entries[i].replica < other.entries[j].replica) {
                merged.append(entries[i]); i += 1
            } else if i == entries.count || other.entries[j].replica < entries[i].replica {
                merged.append(other.entries[j]); j += 1
            } else {
                merged.append(Entry(replica: entries[i].replica, counter: max(entries[i].counter, other.entries[j].counter)))
                i += 1; j += 1
            }
        }
        entries = merged
    }

    /// `join` of `other` less `skipped`'s entry, without building that vector
    /// first (a device joins each delta's context less its own dots).
    public mutating func join(_ other: VersionVector, leavingOut skipped: ReplicaID) {
        guard other.entries.contains(where: { $0.replica == skipped }) else { return join(other) }
        var mine = 0
        var covered = true  // most joins add nothing: checked first, so no list is built
        for theirs in other.entries where theirs.replica != skipped {
            while mine < entries.count, entries[mine].replica < theirs.replica { mine += 1 }
            guard mine < entries.count, entries[mine].replica == theirs.replica, entries[mine].counter >= theirs.counter else {
                covered = false
                break
            }
        }
        if covered { return }
        var merged: [Entry] = []
        merged.reserveCapacity(entries.count + other.entries.count - 1)
        mine = 0
        for theirs in other.entries where theirs.replica != skipped {
            while mine < entries.count, entries[mine].replica < theirs.replica {
                merged.append(entries[mine])
                mine += 1
            }
            if mine < entries.count, entries[mine].replica == theirs.replica {
                merged.append(Entry(replica: theirs.replica, counter: max(entries[mine].counter, theirs.counter)))
                mine += 1
            } else {
                merged.append(theirs)
            }
        }
        merged.append(contentsOf: entries[mine...])
        entries = merged
    }

    public func joined(_ other: VersionVector) -> VersionVector {
        var copy = self
        copy.join(other)
        return copy
    }

    public var description: String {
        "[" + entries.map { "\($0.replica.rawValue):\($0.counter)" }.joined(separator: ",") + "]"
    }
}

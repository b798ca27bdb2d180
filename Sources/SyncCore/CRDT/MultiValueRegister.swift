/// One value written to a register, with its value ID (the write's dot).
public struct RegisterValue<Value: Hashable & Sendable>: Hashable, Sendable {
    public var dot: Dot
    public var stamp: HLCTimestamp
    public var author: String
    public var value: Value

    public init(dot: Dot, stamp: HLCTimestamp, author: String, value: Value) {
        self.dot = dot
        self.stamp = stamp
        self.author = author
        self.value = value
    }

    /// The total order that picks a winner: highest stamp, then replica, then
    /// counter. Dots are unique, so two distinct values never tie.
    @inline(__always)
    static func ranksAbove(_ lhs: RegisterValue, _ rhs: RegisterValue) -> Bool {
        ranks(lhs.stamp, lhs.dot, above: rhs)
    }

    /// `ranksAbove` for a value known by its stamp and dot.
    @inline(__always)
    static func ranks(_ stamp: HLCTimestamp, _ dot: Dot, above other: RegisterValue) -> Bool {
        if stamp != other.stamp { return stamp > other.stamp }
        if dot.replica != other.dot.replica { return dot.replica > other.dot.replica }
        return dot.counter > other.dot.counter
    }
}

extension RegisterValue: Codable where Value: Codable {}

/// A multi-value register (DESIGN §3). `covered` is the join of the carried
/// contexts of every write received; the values are exactly the received
/// writes whose dots `covered` does not contain. Both parts are a join and a
/// filter, so the state does not depend on the order writes arrive in.
public struct MultiValueRegister<Value: Hashable & Sendable>: Hashable, Sendable {
    public private(set) var covered: VersionVector
    /// Surviving values, best first (the winner is `values[0]`).
    public private(set) var values: [RegisterValue<Value>]

    public init() {
        covered = VersionVector()
        values = []
    }

    init(covered: VersionVector, values: [RegisterValue<Value>]) {
        self.covered = covered
        self.values = values
        normalize()
    }

    public var winner: RegisterValue<Value>? { values.first }

    /// Concurrent distinct values; equal concurrent values are not a conflict.
    public var isConflict: Bool {
        guard values.count > 1, let first = values.first?.value else { return false }
        return values.dropFirst().contains { $0.value != first }
    }

    /// Applies one write. Returns whether the state changed.
    /// (`consuming`: the write is moved into the values, not copied.)
    @discardableResult
    public mutating func apply(_ write: consuming RegisterValue<Value>, context: VersionVector) -> Bool {
        let coverGrew = !covered.includes(context)
        if coverGrew {
            covered.join(context)
            prune(by: covered)
        }
        let dot = write.dot, stamp = write.stamp
        guard !covered.contains(dot), !values.contains(where: { $0.dot == dot }) else { return coverGrew }
        let index = values.firstIndex(where: { RegisterValue<Value>.ranks(stamp, dot, above: $0) }) ?? values.count
        values.insertMoving(write, at: index)
        return true
    }

    /// State join: join the covers, union the values, filter. Returns whether
    /// the state changed, worked out from what the join did rather than by
    /// comparing with a copy (a copy would make every mutated buffer copy too).
    @discardableResult
    public mutating func join(_ other: MultiValueRegister<Value>) -> Bool {
        var changed = false
        if !covered.includes(other.covered) {
            covered.join(other.covered)
            prune(by: covered)
            changed = true
        }
        for value in other.values where !covered.contains(value.dot) && !values.contains(where: { $0.dot == value.dot }) {
            values.append(value)
            changed = true
        }
        // Already sorted unless something came in (and a removal keeps the order).
        if changed { values.sort(by: RegisterValue.ranksAbove) }
        return changed
    }

    /// Drops the values whose dots `cover` contains. Returns whether any went.
    @discardableResult
    mutating func prune(by cover: VersionVector) -> Bool {
        // Checked first: removing from a shared buffer copies it even when nothing goes.
        guard values.contains(where: { cover.contains($0.dot) }) else { return false }
        // Usually the one value there is overwritten: removeLast spares removeAll's generic path.
        if values.count == 1 { values.removeLast() } else { values.removeAll { cover.contains($0.dot) } }
        return true
    }

    private mutating func normalize() {
        // Each decoded register comes here: the usual single value needs neither the filter nor the sort.
        prune(by: covered)
        if values.count > 1 { values.sort(by: RegisterValue.ranksAbove) }
    }
}

extension MultiValueRegister: Codable where Value: Codable {}

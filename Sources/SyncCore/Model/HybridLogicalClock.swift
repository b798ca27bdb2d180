/// A hybrid logical clock stamp: 48-bit milliseconds since 1970 and a 16-bit
/// logical counter, packed so that integer order is stamp order.
public struct HLCTimestamp: RawRepresentable, Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public init(milliseconds: UInt64, logical: UInt16) {
        rawValue = (min(milliseconds, HLCTimestamp.maxMilliseconds) << 16) | UInt64(logical)
    }

    public static let maxMilliseconds: UInt64 = (1 << 48) - 1
    public static let zero = HLCTimestamp(rawValue: 0)

    public var milliseconds: UInt64 { rawValue >> 16 }
    public var logical: UInt16 { UInt16(truncatingIfNeeded: rawValue) }
    public var description: String { "\(milliseconds).\(logical)" }

    public static func < (lhs: HLCTimestamp, rhs: HLCTimestamp) -> Bool { lhs.rawValue < rhs.rawValue }

    public init(from decoder: any Decoder) throws { rawValue = try decoder.singleValueContainer().decode(UInt64.self) }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// The replica's hybrid logical clock. It never reads a clock itself: callers
/// pass the wall time, so tests are deterministic (STYLE: inject time).
public struct HybridLogicalClock: Sendable, Hashable, Codable {
    /// The latest stamp issued or observed.
    public private(set) var last: HLCTimestamp
    /// How far a remote stamp may lie ahead of our wall clock before we stop
    /// following it (DESIGN §3: default 5 minutes).
    public var maxDriftMilliseconds: UInt64

    public init(last: HLCTimestamp = .zero, maxDriftMilliseconds: UInt64 = 5 * 60 * 1000) {
        self.last = last
        self.maxDriftMilliseconds = maxDriftMilliseconds
    }

    /// Issues a stamp strictly greater than every stamp issued or observed.
    /// The logical counter saturates into the next millisecond.
    public mutating func tick(wallMilliseconds: UInt64) -> HLCTimestamp {
        let wall = min(wallMilliseconds, HLCTimestamp.maxMilliseconds)
        if wall > last.milliseconds {
            last = HLCTimestamp(milliseconds: wall, logical: 0)
        } else {
            last = HLCTimestamp(rawValue: last.rawValue &+ 1)
        }
        return last
    }

    /// Merges a remote stamp. A stamp beyond wall clock + max drift is not
    /// followed (our clock would be dragged days ahead by one broken device);
    /// the caller flags it as clock skew and keeps the stamp's value as it is.
    /// Returns false when the stamp was skewed.
    @discardableResult
    public mutating func observe(_ remote: HLCTimestamp, wallMilliseconds: UInt64) -> Bool {
        let limit = min(wallMilliseconds, HLCTimestamp.maxMilliseconds) &+ maxDriftMilliseconds
        guard remote.milliseconds <= limit else { return false }
        if remote > last { last = remote }
        return true
    }
}

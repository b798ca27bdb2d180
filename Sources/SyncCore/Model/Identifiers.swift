public import Foundation

/// A household, identified by a UUID made on the device that created it, so
/// households can be created offline (DESIGN §2).
public struct HouseholdID: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// The UUID's 16 bytes as two big-endian words: compares and hashes
    /// without allocating (household IDs key every segment lookup).
    public let high: UInt64
    public let low: UInt64

    public init(_ uuid: UUID) {
        let u = uuid.uuid
        high = [u.0, u.1, u.2, u.3, u.4, u.5, u.6, u.7].reduce(0) { $0 << 8 | UInt64($1) }
        low = [u.8, u.9, u.10, u.11, u.12, u.13, u.14, u.15].reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// Parses the canonical UUID text form (8-4-4-4-12 hex digits, either case).
    public init?(_ text: String) {
        var words: (UInt64, UInt64) = (0, 0)
        var digits = 0
        var length = 0
        for (index, byte) in text.utf8.enumerated() {
            length += 1
            guard length <= 36 else { return nil }
            if index == 8 || index == 13 || index == 18 || index == 23 {
                guard byte == UInt8(ascii: "-") else { return nil }
                continue
            }
            let value: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            if digits < 16 { words.0 = words.0 << 4 | UInt64(value) } else { words.1 = words.1 << 4 | UInt64(value) }
            digits += 1
        }
        guard length == 36, digits == 32 else { return nil }
        self.init(high: words.0, low: words.1)
    }

    /// A fresh random household ID drawn from an injected generator.
    public static func random(using generator: inout some RandomNumberGenerator) -> HouseholdID {
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255, using: &generator) }
        bytes[6] = (bytes[6] & 0x0F) | 0x40  // version 4
        bytes[8] = (bytes[8] & 0x3F) | 0x80  // RFC 4122 variant
        return HouseholdID(bytes: bytes)!
    }

    /// Builds an ID from its 16 raw bytes; nil for any other length.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 16 else { return nil }
        high = bytes[0..<8].reduce(0) { $0 << 8 | UInt64($1) }
        low = bytes[8..<16].reduce(0) { $0 << 8 | UInt64($1) }
    }

    init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    public var uuid: UUID {
        let b = bytes
        return UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
    }

    /// The 16 raw bytes, in network order.
    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 16)
        for i in 0..<8 {
            out[i] = UInt8(truncatingIfNeeded: high >> UInt64(56 - 8 * i))
            out[8 + i] = UInt8(truncatingIfNeeded: low >> UInt64(56 - 8 * i))
        }
        return out
    }

    /// The lowercase 8-4-4-4-12 UUID form, written directly (it names every
    /// household in audit rows and output, so no formatter round trip).
    public var description: String {
        let hex = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(36)
        for (index, word) in [high, low].enumerated() {
            for nibble in 0..<16 {
                let position = index * 16 + nibble
                if position == 8 || position == 12 || position == 16 || position == 20 { out.append(UInt8(ascii: "-")) }
                out.append(hex[Int((word >> UInt64(60 - 4 * nibble)) & 0xF)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func < (lhs: HouseholdID, rhs: HouseholdID) -> Bool {
        lhs.high != rhs.high ? lhs.high < rhs.high : lhs.low < rhs.low
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let id = HouseholdID(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a household UUID"))
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// A replica: one enrolled device. The server issues the number at enrollment,
/// a new one at every re-enrollment, so a dot never needs a device-chosen ID.
public struct ReplicaID: RawRepresentable, Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }
    /// The server's own replica, used for the writes an admin makes on the server (resolves).
    public static let server = ReplicaID(1)
    public var description: String { "r\(rawValue)" }
    public static func < (lhs: ReplicaID, rhs: ReplicaID) -> Bool { lhs.rawValue < rhs.rawValue }
    public init(from decoder: any Decoder) throws { rawValue = try decoder.singleValueContainer().decode(UInt32.self) }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// An operation's identity: its replica plus a dense per-replica, per-segment counter.
public struct Dot: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public var replica: ReplicaID
    public var counter: UInt64

    /// The highest counter an op may carry: the binary codec writes vectors
    /// as signed distances, so every counter must fit in 62 bits.
    public static let maxCounter: UInt64 = (1 << 62) - 1

    public init(replica: ReplicaID, counter: UInt64) {
        self.replica = replica
        self.counter = counter
    }

    /// `r12.7`: the form shown to users as a value ID.
    public var description: String { "\(replica.rawValue).\(counter)" }

    /// Parses the `12.7` form (a leading `r` is accepted).
    public init?(_ text: String) {
        var body = Substring(text)
        if body.first == "r" { body = body.dropFirst() }
        let parts = body.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let replica = UInt32(parts[0]), let counter = UInt64(parts[1]), counter > 0 else { return nil }
        self.init(replica: ReplicaID(replica), counter: counter)
    }

    public static func < (lhs: Dot, rhs: Dot) -> Bool {
        (lhs.replica, lhs.counter) < (rhs.replica, rhs.counter)
    }
}

/// An AVG purpose code (doelbinding, DOMAIN §2). Extensible: the schema decides
/// which codes exist; these are the ones the default schema ships.
public struct Purpose: RawRepresentable, Hashable, Comparable, Sendable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let rawValue: String
    /// A hash of the code computed once: purposes key every segment lookup.
    let code: UInt64

    public init(rawValue: String) {
        self.rawValue = rawValue
        // Over the bytes in a buffer: a reduce over the UTF-8 view stepped through the
        // string's storage byte by byte, and a purpose is made for every segment decoded.
        var text = rawValue
        code = text.withUTF8 { bytes in
            var hash: UInt64 = 0xCBF2_9CE4_8422_2325
            for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
            return hash
        }
    }
    public init(_ rawValue: String) { self.init(rawValue: rawValue) }
    public init(stringLiteral value: String) { self.init(rawValue: value) }
    public var description: String { rawValue }
    public static func < (lhs: Purpose, rhs: Purpose) -> Bool { lhs.rawValue < rhs.rawValue }
    public static func == (lhs: Purpose, rhs: Purpose) -> Bool { lhs.code == rhs.code && lhs.rawValue == rhs.rawValue }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
    public init(from decoder: any Decoder) throws { self.init(rawValue: try decoder.singleValueContainer().decode(String.self)) }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public static let regie: Purpose = "REGIE"
    public static let wmo: Purpose = "WMO"
    public static let jw: Purpose = "JW"
    public static let jb: Purpose = "JB"
    public static let pwWerk: Purpose = "PW_WERK"
    public static let pwInk: Purpose = "PW_INK"
    public static let wgs: Purpose = "WGS"
    public static let bwMo: Purpose = "BW_MO"
    public static let veil: Purpose = "VEIL"
    public static let lp: Purpose = "LP"
    public static let informeel: Purpose = "INFORMEEL"
    public static let toezicht: Purpose = "TOEZICHT"
    public static let monitor: Purpose = "MONITOR"
    /// The server-only segment (e.g. BSN): never disclosed to any device (DESIGN §2).
    public static let serverOnly: Purpose = "SERVER_ONLY"
}

/// One purpose of one household: the unit of sync, authorization, audit and erasure.
public struct SegmentKey: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public var household: HouseholdID
    public var purpose: Purpose

    public init(household: HouseholdID, purpose: Purpose) {
        self.household = household
        self.purpose = purpose
    }

    public var description: String { "\(household)/\(purpose)" }

    public static func < (lhs: SegmentKey, rhs: SegmentKey) -> Bool {
        if lhs.household != rhs.household { return lhs.household < rhs.household }
        return lhs.purpose < rhs.purpose
    }
}

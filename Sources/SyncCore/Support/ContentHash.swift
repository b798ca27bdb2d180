/// A fast 128-bit content hash (two independent 64-bit lanes over 8-byte
/// words, with a strong finaliser). Used for the incremental segment-state
/// hash, where collisions only need to be unlikely by accident: it detects
/// divergence between copies, it does not authenticate anything.
public struct ContentHash128: Hashable, Sendable, Codable {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    public static let zero = ContentHash128(high: 0, low: 0)

    /// The hash from its 16 bytes (as `bytes` writes them); nil for any other length.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else { return nil }
        var high: UInt64 = 0, low: UInt64 = 0
        for (index, byte) in bytes.enumerated() {
            if index < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
        }
        self.init(high: high, low: low)
    }

    @inline(__always)
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 33)) &* 0xFF51_AFD7_ED55_8CCD
        z = (z ^ (z >> 33)) &* 0xC4CE_B9FE_1A85_EC53
        return z ^ (z >> 33)
    }

    public static func of(_ bytes: [UInt8]) -> ContentHash128 {
        bytes.withUnsafeBytes { of($0) }
    }

    static func of(_ raw: UnsafeRawBufferPointer) -> ContentHash128 {
        var a: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(raw.count)
        var b: UInt64 = 0xC2B2_AE3D_27D4_EB4F &+ UInt64(raw.count)
        var offset = 0
        let count = raw.count
        while offset + 8 <= count {
            let word = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            a = (a ^ word) &* 0x0000_0100_0000_01B3 &+ 0x27BB_2EE6_87B0_B0FD
            a = (a << 29) | (a >> 35)
            b = (b &+ word) &* 0x9FB2_1C65_1E98_DF25
            b ^= b >> 31
            offset += 8
        }
        let tail = raw.baseAddress.map { $0.littleEndianTail(from: offset, count: count) } ?? 0
        a = (a ^ tail) &* 0x0000_0100_0000_01B3
        b = (b &+ tail) &* 0x9FB2_1C65_1E98_DF25
        return ContentHash128(high: mix(a ^ (b >> 7)), low: mix(b &+ a))
    }

    /// Multiset combination: order-independent and invertible.
    @inline(__always)
    public static func + (lhs: ContentHash128, rhs: ContentHash128) -> ContentHash128 {
        ContentHash128(high: lhs.high &+ rhs.high, low: lhs.low &+ rhs.low)
    }

    @inline(__always)
    public static func - (lhs: ContentHash128, rhs: ContentHash128) -> ContentHash128 {
        ContentHash128(high: lhs.high &- rhs.high, low: lhs.low &- rhs.low)
    }

    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(16)
        for word in [high, low] {
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: word >> UInt64(shift))) }
        }
        return out
    }
}

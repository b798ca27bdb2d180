/// Dense position keys for collections. A key is the bytes of a fraction chosen
/// between two neighbours, followed by the item's ID as fixed-width bytes, and
/// keys compare as byte strings. The ID suffix makes every key unique, so two
/// replicas inserting at the same place never produce equal keys, and
/// `between` can always find room, even between two keys with equal fractions.
public enum PositionKey {
    /// Bytes of the item ID appended to every fraction.
    static let suffixLength = 8

    /// The full sort key of an item: its fraction plus its ID.
    public static func sortKey(fraction: [UInt8], item: Dot) -> [UInt8] {
        fraction.withUnsafeBufferPointer { sortKey(fraction: $0, item: item) }
    }

    /// The same from a fraction's bytes where they lie, written straight
    /// into a key of the exact size (no growth, no call between the reads).
    @inline(__always)
    static func sortKey(fraction: UnsafeBufferPointer<UInt8>, item: Dot) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: fraction.count + suffixLength) { key, count in
            for index in fraction.indices { key[index] = fraction[index] }
            let suffix = UInt64(item.replica.rawValue) << 32 | UInt64(UInt32(truncatingIfNeeded: item.counter))
            for byte in 0..<suffixLength { key[fraction.count + byte] = UInt8(truncatingIfNeeded: suffix >> UInt64(56 - 8 * byte)) }
            count = fraction.count + suffixLength
        }
    }

    /// A fraction whose sort key (with any suffix) lies strictly between the
    /// sort keys `lower` and `upper` (nil = open end). It never ends in a zero
    /// byte and is never a prefix of `upper`, so any suffix keeps it in range.
    public static func between(_ lower: [UInt8]?, _ upper: [UInt8]?) -> [UInt8] {
        let low = lower ?? []
        var result: [UInt8] = []
        var upperBound = upper  // nil once the result has dropped below `upper`
        var index = 0
        while true {
            let a = index < low.count ? Int(low[index]) : 0
            let b: Int
            if let bound = upperBound {
                b = index < bound.count ? Int(bound[index]) : 0
            } else {
                b = 256
            }
            if b - a > 1 {
                result.append(UInt8((a + b) / 2))
                return result
            }
            result.append(UInt8(a))
            if a < b { upperBound = nil }
            index += 1
            // Guard against a malformed upper key (shorter than and equal to
            // the lower prefix): stop widening and go above the lower key.
            if index > low.count + 64 { return result + [128] }
        }
    }

    /// Lexicographic byte order.
    @inline(__always)
    public static func precedes(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        lhs.lexicographicallyPrecedes(rhs)
    }
}

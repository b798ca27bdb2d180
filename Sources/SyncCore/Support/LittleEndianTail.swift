extension UnsafeRawPointer {
    /// The bytes from `offset` up to `count` (0-7 of them: what is left after
    /// whole words) as one little-endian word, the first byte lowest; zero when
    /// none are left. Every hasher ends its bytes with it (element, key and content hashes).
    @inline(__always)
    func littleEndianTail(from offset: Int, count: Int) -> UInt64 {
        let left = count - offset
        guard left > 0 else { return 0 }
        // The last eight bytes, shifted down past the ones already read: one load instead of a memcpy call.
        if count >= 8 { return UInt64(littleEndian: loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)) >> UInt64(8 * (8 - left)) }
        // A short text: four, two and one bytes, each load in place, without reading past its end.
        var tail: UInt64 = 0, shift: UInt64 = 0, at = offset
        if left & 4 != 0 {
            tail = UInt64(UInt32(littleEndian: loadUnaligned(fromByteOffset: at, as: UInt32.self)))
            at += 4
            shift = 32
        }
        if left & 2 != 0 {
            tail |= UInt64(UInt16(littleEndian: loadUnaligned(fromByteOffset: at, as: UInt16.self))) << shift
            at += 2
            shift += 16
        }
        if left & 1 != 0 { tail |= UInt64(load(fromByteOffset: at, as: UInt8.self)) << shift }
        return tail
    }
}

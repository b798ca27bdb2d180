import Foundation  // memcmp

/// The bucket hash of the keys that every sync looks up many times: segment
/// keys, household IDs, dots and message symbols.
///
/// Set and Dictionary ask a key for `_rawHashValue(seed:)`, whose default runs
/// Swift's Hasher (SipHash-1-3) over each word: about 200 instructions for a
/// segment key, and a replay of the benchmark trace made some 700 000 such
/// lookups. These keys answer with one or two multiply-folds instead (the mixer
/// of wyhash), about ten instructions.
///
/// Which keys share a bucket must not be something a device can choose (it
/// picks its own household IDs): the seed a table passes is only its
/// storage address, so each hash also takes a key drawn once per process
/// from Swift's own random hashing seed (fixed, like Hasher's, under
/// SWIFT_DETERMINISTIC_HASHING), in both factors of the first fold (a fold
/// with a known factor could be made zero).
enum KeyHash {
    /// The process's secret, from the standard library's random hashing seed.
    static let processKey: UInt64 = {
        var hasher = Hasher()
        hasher.combine(0x4B65_7948_6173_6821 as UInt64)
        return UInt64(bitPattern: Int64(hasher.finalize()))
    }()

    @inline(__always)
    static func fold(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let product = a.multipliedFullWidth(by: b)
        return product.high ^ product.low
    }

    /// The bucket hash of two words, then optionally a third.
    @inline(__always)
    static func hash(_ first: UInt64, _ second: UInt64, _ third: UInt64 = 0, seed: Int) -> Int {
        let s = UInt64(bitPattern: Int64(seed)) ^ processKey
        let mixed = fold(first ^ s ^ 0xA076_1D64_78BD_642F, second ^ (s &* 0x9E37_79B9_7F4A_7C15) ^ 0xE703_7ED1_A0B4_28DB)
        return Int(truncatingIfNeeded: fold(mixed ^ third ^ 0x8EBC_6AF0_9C88_C6E3, s ^ 0x5899_65CC_7537_4CC3))
    }

    /// The bucket hash of a string's UTF-8 bytes, eight at a time.
    static func hash(utf8 text: String, seed: Int) -> Int {
        if let hash = text.utf8.withContiguousStorageIfAvailable({ hash(bytes: $0, seed: seed) }) { return hash }
        var copy = text  // a bridged string: its bytes are not in one piece
        return copy.withUTF8 { hash(bytes: $0, seed: seed) }
    }

    static func hash(bytes: UnsafeBufferPointer<UInt8>, seed: Int) -> Int {
        // Keyed from the start: with a known start, two texts whose words fold to the same value would collide whatever the seed.
        var a: UInt64 = 0x2D35_8DCC_AA6C_78A5 ^ processKey ^ UInt64(bitPattern: Int64(seed))
        let count = bytes.count
        guard let base = bytes.baseAddress else { return hash(a, 0, seed: seed) }
        let raw = UnsafeRawPointer(base)
        var offset = 0
        while offset + 8 <= count {
            a = fold(a ^ UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)), 0x9E37_79B9_7F4A_7C15)
            offset += 8
        }
        return hash(a ^ raw.littleEndianTail(from: offset, count: count), UInt64(count), seed: seed)
    }

    /// Whether two strings hold the same UTF-8 bytes.
    static func sameBytes(_ lhs: String, _ rhs: String) -> Bool {
        let left = lhs.utf8, right = rhs.utf8
        guard left.count == right.count else { return false }
        let compared = left.withContiguousStorageIfAvailable { a in
            right.withContiguousStorageIfAvailable { b in a.count == 0 || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0 }
        }
        return compared.flatMap { $0 } ?? left.elementsEqual(right)
    }
}

extension HouseholdID {
    public func _rawHashValue(seed: Int) -> Int { KeyHash.hash(high, low, seed: seed) }
}

extension Purpose {
    public func _rawHashValue(seed: Int) -> Int { KeyHash.hash(code, 0, seed: seed) }
}

extension SegmentKey {
    public func _rawHashValue(seed: Int) -> Int { KeyHash.hash(household.high, household.low, purpose.code, seed: seed) }
}

extension Dot {
    public func _rawHashValue(seed: Int) -> Int { KeyHash.hash(UInt64(replica.rawValue), counter, seed: seed) }
}

/// A string as a table key compared by its UTF-8 bytes, with the fast hash
/// (a String key hashes by Unicode canonical equivalence, through SipHash).
/// For names on the wire the bytes are what counts: two spellings of one
/// name that differ in bytes stay two symbols, each written as it came.
struct ByteKey: Hashable, Sendable {
    var text: String

    init(_ text: String) { self.text = text }

    static func == (lhs: ByteKey, rhs: ByteKey) -> Bool { KeyHash.sameBytes(lhs.text, rhs.text) }

    func hash(into hasher: inout Hasher) { hasher.combine(KeyHash.hash(utf8: text, seed: 0)) }

    func _rawHashValue(seed: Int) -> Int { KeyHash.hash(utf8: text, seed: seed) }
}

import Foundation

/// Appends the compact binary form: LEB128 varints, length-prefixed bytes and
/// a per-message string table, so a repeated field name or author costs one byte.
public struct BinaryWriter: Sendable {
    public private(set) var bytes: [UInt8] = []
    private var strings: [ByteKey: UInt32] = [:]
    /// Stamps are written as a delta from the previous one in the message.
    private var lastStampMilliseconds: UInt64 = 0

    /// A message-wide table of household IDs: inside a message a household is
    /// its index in the table (one byte, usually) instead of 16 bytes.
    var householdTable: [HouseholdID: UInt32]?

    public init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    /// A writer for a section of a sync message, which names some 40 fields,
    /// logs, kinds and authors over and over: its symbol tables start large.
    /// It has no buffer of its own: `section` lends it the message's.
    private init(sectionOf householdTable: [HouseholdID: UInt32]?) {
        self.householdTable = householdTable
        recentSymbols = SymbolCache(slots: 64)
        isMessageSection = true
    }

    /// Writes a section of a sync message, `tag, varint(length), body`. The
    /// body gets a writer of its own (its own string table and stamp base, so
    /// a reader can skip the section), which writes straight into this
    /// writer's buffer behind room for a three-byte length; the length then
    /// takes that room, and the body moves only when its length takes another
    /// width. Written apart and appended, every body was copied twice more:
    /// while its own buffer grew, and into the message.
    mutating func section(_ tag: UInt8, _ body: (inout BinaryWriter) -> Void) {
        byte(tag)
        let lengthAt = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: Self.sectionLengthRoom))
        var inner = BinaryWriter(sectionOf: householdTable)
        swap(&inner.bytes, &bytes)
        body(&inner)
        swap(&inner.bytes, &bytes)
        let start = lengthAt + Self.sectionLengthRoom
        var length = BinaryWriter(capacity: 10)
        length.varint(bytes.count - start)
        bytes.replaceSubrange(lengthAt..<start, with: length.bytes)
    }

    /// Room for a section's length: three varint bytes hold up to 2 MiB, so
    /// the large sections (ops, deltas, snapshots) are never moved.
    private static let sectionLengthRoom = 3

    @inline(__always)
    public mutating func byte(_ value: UInt8) { bytes.append(value) }

    @inline(__always)
    public mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    @inline(__always)
    public mutating func varint(_ value: Int) { varint(UInt64(value)) }

    /// Signed values, zigzag-encoded so small negatives stay small.
    @inline(__always)
    public mutating func signed(_ value: Int64) {
        varint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    public mutating func bool(_ value: Bool) { bytes.append(value ? 1 : 0) }

    public mutating func raw(_ data: [UInt8]) { bytes.append(contentsOf: data) }

    /// Length-prefixed bytes.
    public mutating func data(_ data: [UInt8]) {
        varint(data.count)
        bytes.append(contentsOf: data)
    }

    /// A length-prefixed UTF-8 string, written in full every time (text content).
    public mutating func string(_ value: String) {
        value.withUTF8InPlace { utf8 in
            varint(utf8.count)
            bytes.append(contentsOf: utf8)
        }
    }

    /// A string from the message's table: names, authors, codes. `0` then the
    /// literal the first time; `index + 1` afterwards. Indexes start after the
    /// static table, whose strings never need a literal.
    public mutating func symbol(_ value: String) {
        if let index = recentSymbols.index(of: value) {
            varint(UInt64(index) + 1)
            return
        }
        let index: UInt32
        let key = ByteKey(value)
        // Dynamic first: a static string is never inserted there, so the order cannot change the output.
        if let known = strings[key] {
            index = known
        } else if let known = StaticSymbols.index[key] {
            index = known
        } else {
            // A message's names and authors at once: grown from empty, the table was rehashed
            // five times on the way, in every section.
            if strings.isEmpty, isMessageSection { strings.reserveCapacity(48) }
            strings[key] = UInt32(StaticSymbols.table.count + dynamicCount)
            dynamicCount += 1
            varint(0)
            string(value)
            return
        }
        recentSymbols.remember(value, index: index)
        varint(UInt64(index) + 1)
    }

    private var dynamicCount = 0
    /// A message section's tables start large (`init(sectionOf:)`).
    private var isMessageSection = false
    /// 16 slots suit the small writers (a row, a segment); a message section asks for more.
    private var recentSymbols = SymbolCache(slots: 16)

    /// With a table, a household is its index + 1, or 0 and its raw bytes
    /// when it is not in the table: a field left out of `householdsReferenced`
    /// costs 17 bytes instead of breaking the message.
    public mutating func household(_ id: HouseholdID) {
        guard let table = householdTable else { return rawHousehold(id) }
        if let index = table[id] {
            varint(UInt64(index) + 1)
        } else {
            byte(0)
            rawHousehold(id)
        }
    }

    /// A household's 16 bytes, table or not.
    mutating func rawHousehold(_ id: HouseholdID) {
        // Both words big-endian, appended at once (byte by byte, each append checked capacity).
        withUnsafeBytes(of: (id.high.bigEndian, id.low.bigEndian)) { bytes.append(contentsOf: $0) }
    }

    /// A stamp as the signed millisecond delta from the previous stamp, with a
    /// low bit that says whether a logical part follows (it is usually 0).
    public mutating func stamp(_ stamp: HLCTimestamp) {
        let ms = stamp.milliseconds
        let delta = Int64(bitPattern: ms &- lastStampMilliseconds)
        signed(delta &* 2 &+ (stamp.logical == 0 ? 0 : 1))
        lastStampMilliseconds = ms
        if stamp.logical != 0 { varint(UInt64(stamp.logical)) }
    }

    public mutating func dot(_ dot: Dot) {
        varint(UInt64(dot.replica.rawValue))
        varint(dot.counter)
    }

    public mutating func vector(_ vector: VersionVector) {
        varint(vector.entries.count)
        var previous: UInt32 = 0
        for entry in vector.entries {
            varint(UInt64(entry.replica.rawValue - previous))
            previous = entry.replica.rawValue
            varint(entry.counter)
        }
    }

    /// A vector written relative to a base (usually the segment context): per
    /// entry the replica delta and the signed distance below the base.
    public mutating func vector(_ vector: VersionVector, relativeTo base: VersionVector) {
        varint(vector.entries.count)
        var previous: UInt32 = 0
        for entry in vector.entries {
            varint(UInt64(entry.replica.rawValue - previous))
            previous = entry.replica.rawValue
            signed(Int64(bitPattern: base[entry.replica] &- entry.counter))
        }
    }

    public mutating func context(_ context: CausalContext) {
        vector(context.vector)
        varint(context.cloud.count)
        for dot in context.cloud { self.dot(dot) }
    }
}

/// The symbols a writer used lately, found by the string's own 16 bytes: a
/// message names the same field, log, author and purpose over and over, and
/// hashing the text for each (twice for a static symbol) was most of the cost
/// of writing one. Equal bytes mean the same string: a small string holds its
/// text in them, a large one points at its storage, which the cache keeps
/// alive (each entry holds the string), so no other text can reuse the
/// address. Different bytes may still be equal text: that is a miss, and the
/// tables answer as before.
struct SymbolCache: Sendable {
    private struct Entry: Sendable {
        var key: (UInt64, UInt64)
        var index: UInt32
        var string: String  // keeps a large string's storage, and so its address, alive
    }

    /// Direct-mapped entries, made at the first symbol (most writers, such as a state hash's, never use one).
    /// A message section names some 40 fields, logs, kinds and authors: with 16 entries they kept
    /// evicting each other, and half the lookups missed.
    private var entries: [Entry?] = []
    /// 64 less log2 of the slot count: a slot is the top bits of the key's hash.
    private let shift: UInt8

    /// `slots` is a power of two.
    init(slots: Int) {
        assert(slots > 1 && slots & (slots - 1) == 0, "slots must be a power of two")
        shift = UInt8(64 - slots.trailingZeroBitCount)
    }

    @inline(__always)
    private static func key(_ value: String) -> (UInt64, UInt64) {
        withUnsafeBytes(of: value) { $0.loadUnaligned(as: (UInt64, UInt64).self) }
    }

    @inline(__always)
    private func slot(_ key: (UInt64, UInt64)) -> Int {
        Int(truncatingIfNeeded: (key.0 ^ (key.1 &* 0x9E37_79B9_7F4A_7C15)) >> UInt64(shift))
    }

    /// The cache works on 64-bit platforms, where a String is two words.
    private static let usable = MemoryLayout<String>.size == MemoryLayout<(UInt64, UInt64)>.size

    func index(of value: String) -> UInt32? {
        guard Self.usable, !entries.isEmpty else { return nil }
        let key = Self.key(value)
        return entries.withUnsafeBufferPointer { table in
            guard let entry = table[slot(key)], entry.key == key else { return nil }
            return entry.index
        }
    }

    mutating func remember(_ value: String, index: UInt32) {
        guard Self.usable else { return }
        if entries.isEmpty { entries = Array(repeating: nil, count: 1 << (64 - Int(shift))) }
        let key = Self.key(value)
        entries[slot(key)] = Entry(key: key, index: index, string: value)
    }
}

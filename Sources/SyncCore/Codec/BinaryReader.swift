import Foundation

/// Reads the compact binary form. Every read is bounds-checked and every count
/// is checked against the bytes left, so hostile input (truncated, oversized,
/// huge lengths) ends in a typed `SyncCoreError`, never a crash, a hang or a
/// large allocation.
public struct BinaryReader {
    private let bytes: [UInt8]
    public private(set) var offset: Int
    /// Where the reader stops: a section's reader shares the message's bytes
    /// and reads its window of them (copying each section cost a copy of the body).
    private let end: Int
    private var strings: [String] = []
    private var lastStampMilliseconds: UInt64 = 0

    /// The message's household table, when the message has one (see BinaryWriter).
    var householdList: [HouseholdID]?

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        offset = 0
        end = bytes.count
    }

    init(_ bytes: [UInt8], householdList: [HouseholdID]?) {
        self.init(bytes, window: 0..<bytes.count, householdList: householdList)
    }

    /// A reader of `bytes[window]` (a range checked against the buffer).
    init(_ bytes: [UInt8], window: Range<Int>, householdList: [HouseholdID]? = nil) {
        precondition(window.lowerBound >= 0 && window.upperBound <= bytes.count, "reader window outside the buffer")
        self.bytes = bytes
        offset = window.lowerBound
        end = window.upperBound
        self.householdList = householdList
    }

    public var isAtEnd: Bool { offset >= end }
    public var remaining: Int { end - offset }

    /// Skips `length` bytes and returns where they lie, for a reader of their own.
    mutating func window(_ length: Int) throws(SyncCoreError) -> Range<Int> {
        guard length >= 0, length <= remaining else { throw Self.truncated() }
        defer { offset += length }
        return offset..<(offset + length)
    }

    /// A fresh reader of a window of this reader's buffer (from `window(_:)`).
    func reading(_ window: Range<Int>, householdList: [HouseholdID]? = nil) -> BinaryReader {
        BinaryReader(bytes, window: window, householdList: householdList)
    }

    /// A reader of what is left, sharing the buffer (and the household table).
    var rest: BinaryReader { BinaryReader(bytes, window: offset..<end, householdList: householdList) }

    static func truncated() -> SyncCoreError {
        SyncCoreError(.truncated, "The message ended early. Send the whole message again.")
    }

    static func malformed(_ what: String) -> SyncCoreError {
        SyncCoreError(.malformed, "The message is not valid FieldSync binary (\(what)). Check the client version and resend.")
    }

    /// The byte at `index`, which the caller has checked against `end`; `end`
    /// never passes the buffer's count (the initializers check it), so the
    /// array's own bounds check, which the compiler cannot drop, is not repeated.
    @inline(__always)
    private func unchecked(_ index: Int) -> UInt8 { bytes.withUnsafeBufferPointer { $0[index] } }

    @inline(__always)
    public mutating func byte() throws(SyncCoreError) -> UInt8 {
        guard offset < end else { throw Self.truncated() }
        let value = unchecked(offset)
        offset += 1
        return value
    }

    @inline(__always)
    public mutating func varint() throws(SyncCoreError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < end else { throw Self.truncated() }
            let b = unchecked(offset)
            offset += 1
            if shift == 63, b > 1 { throw Self.malformed("varint overflow") }
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
            if shift > 63 { throw Self.malformed("varint too long") }
        }
    }

    public mutating func signed() throws(SyncCoreError) -> Int64 {
        let raw = try varint()
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    public mutating func uint32() throws(SyncCoreError) -> UInt32 {
        let value = try varint()
        guard value <= UInt64(UInt32.max) else { throw Self.malformed("number out of range") }
        return UInt32(value)
    }

    public mutating func int() throws(SyncCoreError) -> Int {
        let value = try varint()
        guard value <= UInt64(Int32.max) else { throw Self.malformed("number out of range") }
        return Int(value)
    }

    public mutating func bool() throws(SyncCoreError) -> Bool {
        switch try byte() {
        case 0: return false
        case 1: return true
        default: throw Self.malformed("bad boolean")
        }
    }

    /// A count of items that each take at least `minimumSize` bytes.
    public mutating func count(minimumSize: Int = 1) throws(SyncCoreError) -> Int {
        let value = try varint()
        guard value <= UInt64(remaining / max(1, minimumSize)) else {
            throw SyncCoreError(.tooLarge, "The message declares more items than it holds. Resend it.")
        }
        return Int(value)
    }

    public mutating func raw(_ length: Int) throws(SyncCoreError) -> [UInt8] {
        guard length >= 0, length <= remaining else { throw Self.truncated() }
        let slice = Array(bytes[offset..<(offset + length)])
        offset += length
        return slice
    }

    public mutating func data() throws(SyncCoreError) -> [UInt8] {
        let length = try varint()
        guard length <= UInt64(remaining) else { throw Self.truncated() }
        return try raw(Int(length))
    }

    public mutating func string() throws(SyncCoreError) -> String {
        let length = try varint()
        guard length <= UInt64(remaining) else { throw Self.truncated() }
        let start = offset, end = offset + Int(length)
        // Checked once, by UTF8Text (the standard library's own check reads most notes byte by byte).
        guard let text = bytes.withUnsafeBufferPointer({ UTF8Text.string(UnsafeBufferPointer(rebasing: $0[start..<end])) }) else {
            throw Self.malformed("invalid UTF-8")
        }
        offset = end
        return text
    }

    public mutating func symbol() throws(SyncCoreError) -> String {
        let tag = try varint()
        if tag == 0 {
            let text = try string()
            strings.append(text)
            return text
        }
        let index = Int(truncatingIfNeeded: tag - 1)
        if tag - 1 < UInt64(StaticSymbols.table.count) { return StaticSymbols.table[index] }
        let dynamic = tag - 1 - UInt64(StaticSymbols.table.count)
        guard dynamic < UInt64(strings.count) else { throw Self.malformed("unknown string reference") }
        return strings[Int(dynamic)]
    }

    public mutating func household() throws(SyncCoreError) -> HouseholdID {
        if let list = householdList {
            let reference = try varint()
            if reference == 0 { return try rawHousehold() }
            guard reference <= UInt64(list.count) else { throw Self.malformed("unknown household reference") }
            return list[Int(reference - 1)]
        }
        return try rawHousehold()
    }

    mutating func rawHousehold() throws(SyncCoreError) -> HouseholdID {
        guard remaining >= 16 else { throw Self.truncated() }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for i in 0..<8 { high = high << 8 | UInt64(bytes[offset + i]) }
        for i in 8..<16 { low = low << 8 | UInt64(bytes[offset + i]) }
        offset += 16
        return HouseholdID(high: high, low: low)
    }

    public mutating func stamp() throws(SyncCoreError) -> HLCTimestamp {
        let folded = try signed()
        let hasLogical = folded & 1 == 1
        let ms = lastStampMilliseconds &+ UInt64(bitPattern: folded >> 1)
        guard ms <= HLCTimestamp.maxMilliseconds else { throw Self.malformed("stamp out of range") }
        lastStampMilliseconds = ms
        let logical = hasLogical ? try varint() : 0
        guard logical <= UInt64(UInt16.max) else { throw Self.malformed("stamp out of range") }
        return HLCTimestamp(milliseconds: ms, logical: UInt16(logical))
    }

    public mutating func dot() throws(SyncCoreError) -> Dot {
        let replica = try uint32()
        let counter = try varint()
        guard counter > 0, counter <= Dot.maxCounter else { throw Self.malformed("counter out of range") }
        return Dot(replica: ReplicaID(replica), counter: counter)
    }

    public mutating func vector() throws(SyncCoreError) -> VersionVector {
        try vector { (_, reader: inout BinaryReader) throws(SyncCoreError) in
            let value = try reader.varint()
            guard value > 0, value <= Dot.maxCounter else { throw Self.malformed("counter out of range") }
            return value
        }
    }

    public mutating func vector(relativeTo base: VersionVector) throws(SyncCoreError) -> VersionVector {
        try vector { (replica, reader: inout BinaryReader) throws(SyncCoreError) in
            let distance = try reader.signed()
            let counter = base[replica] &- UInt64(bitPattern: distance)
            guard counter > 0, counter <= Dot.maxCounter else { throw Self.malformed("counter out of range") }
            return counter
        }
    }

    /// Reads `count, (replica delta, counter)…` with the counter read by `counter`.
    private mutating func vector(_ counter: (ReplicaID, inout BinaryReader) throws(SyncCoreError) -> UInt64) throws(SyncCoreError) -> VersionVector {
        let n = try count(minimumSize: 2)
        var entries: [VersionVector.Entry] = []
        entries.reserveCapacity(n)
        var previous: UInt64 = 0
        for index in 0..<n {
            let delta = try varint()
            guard index == 0 || delta > 0 else { throw Self.malformed("unsorted vector") }
            let replica = previous + delta
            guard replica <= UInt64(UInt32.max) else { throw Self.malformed("replica out of range") }
            previous = replica
            let id = ReplicaID(UInt32(replica))
            entries.append(.init(replica: id, counter: try counter(id, &self)))
        }
        return VersionVector(sortedEntries: entries)
    }

    public mutating func context() throws(SyncCoreError) -> CausalContext {
        let vector = try vector()
        let n = try count(minimumSize: 2)
        var cloud: [Dot] = []
        for _ in 0..<n { cloud.append(try dot()) }
        return CausalContext(vector: vector, cloud: cloud)
    }
}

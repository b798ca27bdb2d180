/// Binary form of segment elements. Vectors inside an element are written
/// relative to the enclosing segment's context (`base`), where they nearly
/// always match, so each entry costs about two bytes.
extension MultiValueRegister where Value: RegisterPayload {
    func encode(to writer: inout BinaryWriter, base: VersionVector) {
        writer.vector(covered, relativeTo: base)
        writer.varint(values.count)
        for value in values {
            writer.dot(value.dot)
            writer.stamp(value.stamp)
            writer.symbol(value.author)
            value.value.encodePayload(to: &writer)
        }
    }

    static func decode(from reader: inout BinaryReader, base: VersionVector) throws(SyncCoreError) -> MultiValueRegister<Value> {
        let covered = try reader.vector(relativeTo: base)
        let n = try reader.count(minimumSize: 4)
        var values: [RegisterValue<Value>] = []
        values.reserveCapacity(n)
        for _ in 0..<n {
            let dot = try reader.dot()
            let stamp = try reader.stamp()
            let author = try reader.symbol()
            let value = try Value.decodePayload(from: &reader)
            guard !values.contains(where: { $0.dot == dot }) else { throw BinaryReader.malformed("duplicate value") }
            values.append(RegisterValue(dot: dot, stamp: stamp, author: author, value: value))
        }
        return MultiValueRegister(covered: covered, values: values)
    }
}

extension LogEntry {
    /// The visit time is written relative to the entry's stamp (they are
    /// usually close), with the low bit telling whether a correction follows.
    func encode(to writer: inout BinaryWriter) {
        writer.dot(dot)
        writer.stamp(stamp)
        writer.symbol(author)
        writer.symbol(body.kind)
        let offset = Int64(bitPattern: body.occurredAt &- stamp.milliseconds)
        writer.signed(offset &* 2 &+ (body.correctionOf == nil ? 0 : 1))
        writer.string(body.text)
        if let correction = body.correctionOf { writer.dot(correction) }
    }

    static func decode(from reader: inout BinaryReader) throws(SyncCoreError) -> LogEntry {
        let dot = try reader.dot()
        let stamp = try reader.stamp()
        let author = try reader.symbol()
        let kind = try reader.symbol()
        let folded = try reader.signed()
        let occurredAt = stamp.milliseconds &+ UInt64(bitPattern: folded >> 1)
        let text = try reader.string()
        let correction: Dot? = folded & 1 == 1 ? try reader.dot() : nil
        return LogEntry(dot: dot, stamp: stamp, author: author,
                        body: LogEntryBody(kind: kind, occurredAt: occurredAt, text: text, correctionOf: correction))
    }
}

extension CollectionItem {
    // Presence flags: most items were inserted and maybe removed once, so
    // empty registers, the usual `writes == [id]` and a write cover equal to
    // the text's cover cost nothing.
    private static let hasBase: UInt8 = 1
    private static let hasStatus: UInt8 = 2
    private static let hasPosition: UInt8 = 4
    private static let writesAreID: UInt8 = 8
    private static let hasRemoves: UInt8 = 16
    private static let writeCoverIsTextCover: UInt8 = 32
    private static let hasRemoveCover: UInt8 = 64
    private static let hasText: UInt8 = 128

    private static func isEmpty<V>(_ register: MultiValueRegister<V>) -> Bool { register.covered.isEmpty && register.values.isEmpty }

    func encode(to writer: inout BinaryWriter, base: VersionVector) {
        var flags: UInt8 = 0
        if basePosition != nil { flags |= Self.hasBase }
        if !Self.isEmpty(status) { flags |= Self.hasStatus }
        if !Self.isEmpty(position) { flags |= Self.hasPosition }
        if writesAreJustTheInsert { flags |= Self.writesAreID }
        if !removes.isEmpty { flags |= Self.hasRemoves }
        if !Self.isEmpty(text) { flags |= Self.hasText }
        if flags & Self.hasText != 0, writeCover == text.covered { flags |= Self.writeCoverIsTextCover }
        if !removeCover.isEmpty { flags |= Self.hasRemoveCover }
        writer.dot(id)
        writer.byte(flags)
        if let basePosition { writer.data(basePosition) }
        if flags & Self.hasText != 0 { text.encode(to: &writer, base: base) }
        if flags & Self.hasStatus != 0 { status.encode(to: &writer, base: base) }
        if flags & Self.hasPosition != 0 { position.encode(to: &writer, base: base) }
        if flags & Self.writesAreID == 0 {
            writer.varint(writes.count)
            for dot in writes { writer.dot(dot) }
        }
        if flags & Self.writeCoverIsTextCover == 0 { writer.vector(writeCover, relativeTo: base) }
        if flags & Self.hasRemoves != 0 {
            writer.varint(removes.count)
            for dot in removes { writer.dot(dot) }
        }
        if flags & Self.hasRemoveCover != 0 { writer.vector(removeCover, relativeTo: base) }
    }

    static func decode(from reader: inout BinaryReader, base: VersionVector) throws(SyncCoreError) -> CollectionItem {
        let id = try reader.dot()
        let flags = try reader.byte()
        let basePosition: [UInt8]? = flags & hasBase != 0 ? try reader.data() : nil
        let text = flags & hasText != 0 ? try MultiValueRegister<String>.decode(from: &reader, base: base) : MultiValueRegister()
        let status = flags & hasStatus != 0 ? try MultiValueRegister<String>.decode(from: &reader, base: base) : MultiValueRegister()
        let position = flags & hasPosition != 0 ? try MultiValueRegister<[UInt8]>.decode(from: &reader, base: base) : MultiValueRegister()
        var writes: [Dot] = []
        if flags & writesAreID != 0 {
            writes = [id]
        } else {
            for _ in 0..<(try reader.count(minimumSize: 2)) { writes.append(try reader.dot()) }
        }
        let writeCover = flags & writeCoverIsTextCover != 0 ? text.covered : try reader.vector(relativeTo: base)
        var removes: [Dot] = []
        if flags & hasRemoves != 0 {
            for _ in 0..<(try reader.count(minimumSize: 2)) { removes.append(try reader.dot()) }
        }
        let removeCover = flags & hasRemoveCover != 0 ? try reader.vector(relativeTo: base) : VersionVector()
        // The initializer sorts the dots and drops repeats (a damaged or hand-made body may repeat one).
        return CollectionItem(id: id, basePosition: basePosition, text: text, status: status, position: position,
                              writes: writes, writeCover: writeCover, removes: removes, removeCover: removeCover)
    }
}

extension SegmentElement {
    public func encode(to writer: inout BinaryWriter, base: VersionVector) {
        switch self {
        case .creation(let record):
            writer.byte(0)
            writer.dot(record.dot)
            writer.stamp(record.stamp)
            writer.symbol(record.author)
        case .field(let name, let register):
            writer.byte(1)
            writer.symbol(name)
            register.encode(to: &writer, base: base)
        case .logEntry(let log, let entry):
            writer.byte(2)
            writer.symbol(log)
            entry.encode(to: &writer)
        case .item(let collection, let item):
            writer.byte(3)
            writer.symbol(collection)
            item.encode(to: &writer, base: base)
        }
    }

    public static func decode(from reader: inout BinaryReader, base: VersionVector) throws(SyncCoreError) -> SegmentElement {
        switch try reader.byte() {
        case 0:
            let dot = try reader.dot()
            let stamp = try reader.stamp()
            let author = try reader.symbol()
            return .creation(CreationRecord(dot: dot, stamp: stamp, author: author))
        case 1:
            let name = try reader.symbol()
            return .field(name: name, register: try MultiValueRegister<String>.decode(from: &reader, base: base))
        case 2:
            let log = try reader.symbol()
            return .logEntry(log: log, entry: try LogEntry.decode(from: &reader))
        case 3:
            let collection = try reader.symbol()
            return .item(collection: collection, item: try CollectionItem.decode(from: &reader, base: base))
        default:
            throw BinaryReader.malformed("unknown element kind")
        }
    }

    /// The element alone, as stored in one server row.
    public func encodedRow(base: VersionVector = VersionVector()) -> [UInt8] {
        var writer = BinaryWriter(capacity: 64)
        encode(to: &writer, base: base)
        return writer.bytes
    }

    public static func decodeRow(_ bytes: [UInt8], base: VersionVector = VersionVector()) throws(SyncCoreError) -> SegmentElement {
        var reader = BinaryReader(bytes)
        let element = try decode(from: &reader, base: base)
        guard reader.isAtEnd else { throw BinaryReader.malformed("trailing bytes") }
        return element
    }
}

extension SegmentState {
    /// The canonical, deterministic encoding: device and server copies of a
    /// segment are equal exactly when these bytes are.
    public func canonicalBytes() -> [UInt8] {
        var writer = BinaryWriter(capacity: 1024)
        writer.byte(1)  // format version (2 is taken: a compressed stored form, see SegmentState+Storage)
        writer.household(key.household)
        writer.symbol(key.purpose.rawValue)
        writer.varint(UInt64(epoch))
        writer.context(context)
        let elements = self.elements
        writer.varint(elements.count)
        for element in elements { element.encode(to: &writer, base: context.vector) }
        return writer.bytes
    }

    /// Decodes the canonical encoding.
    public init(canonicalBytes bytes: [UInt8]) throws(SyncCoreError) {
        var reader = BinaryReader(bytes)
        guard try reader.byte() == 1 else { throw SyncCoreError(.unsupportedVersion, "Unknown segment encoding version.") }
        let household = try reader.household()
        let purpose = Purpose(try reader.symbol())
        let epoch = try reader.uint32()
        var state = SegmentState(key: SegmentKey(household: household, purpose: purpose), epoch: epoch)
        let context = try reader.context()
        state.context = context
        let n = try reader.count(minimumSize: 3)
        for _ in 0..<n { state.join(try SegmentElement.decode(from: &reader, base: context.vector)) }
        guard reader.isAtEnd else { throw BinaryReader.malformed("trailing bytes") }
        self = state
    }

    /// An 8-byte hash of the canonical state: the hash of the segment's
    /// identity and causal context combined with the kept-up-to-date sum of
    /// its elements' hashes. Equal canonical states give equal hashes; it
    /// costs O(context), not O(state). This is the pinned byte form
    /// (StoredHashTests); a sync response's state check sums the same eight
    /// bytes read as a word (`stateHashWord`).
    public func stateHash() -> [UInt8] {
        Self.stateHash(key: key, epoch: epoch, context: context, elementDigest: elementDigest)
    }

    /// The state hash from its parts, for stores that keep the digest with the context.
    public static func stateHash(key: SegmentKey, epoch: UInt32, context: CausalContext, elementDigest: ContentHash128) -> [UInt8] {
        let word = stateHashHigh(key: key, epoch: epoch, context: context, elementDigest: elementDigest)
        return (0..<8).map { UInt8(truncatingIfNeeded: word >> UInt64(56 - 8 * $0)) }
    }

    /// The state hash's 8 bytes read little-endian, the way StateCheck sums
    /// them, without building the byte array.
    public func stateHashWord() -> UInt64 {
        Self.stateHashWord(key: key, epoch: epoch, context: context, elementDigest: elementDigest)
    }

    /// The same from its parts, for stores that keep the digest with the context.
    public static func stateHashWord(key: SegmentKey, epoch: UInt32, context: CausalContext, elementDigest: ContentHash128) -> UInt64 {
        stateHashHigh(key: key, epoch: epoch, context: context, elementDigest: elementDigest).byteSwapped
    }

    /// The state hash's 8 bytes as one big-endian word: the hash of the
    /// segment's identity and context, as a BinaryWriter writes them
    /// (`1, household, purpose, epoch, context`), plus the element digest.
    /// The bytes are laid out on the stack: a writer allocated and freed a
    /// buffer of its own for every segment of every state check. The values
    /// are pinned (StoredHashTests): stores and devices keep them.
    private static func stateHashHigh(key: SegmentKey, epoch: UInt32, context: CausalContext, elementDigest: ContentHash128) -> UInt64 {
        let purpose = key.purpose.rawValue
        let entries = context.vector.entries, cloud = context.cloud
        // At most 10 bytes per varint, 16 for the household.
        let capacity = 1 + 16 + 10 + purpose.utf8.count + 10 + 10 + 20 * entries.count + 10 + 20 * cloud.count
        let hash = withUnsafeTemporaryAllocation(byteCount: capacity, alignment: 8) { buffer in
            var out = StackBytes(buffer)
            out.byte(1)
            out.word(key.household.high)
            out.word(key.household.low)
            out.utf8(purpose)
            out.varint(UInt64(epoch))
            out.varint(UInt64(entries.count))
            var previous: UInt32 = 0
            for entry in entries {
                out.varint(UInt64(entry.replica.rawValue - previous))
                previous = entry.replica.rawValue
                out.varint(entry.counter)
            }
            out.varint(UInt64(cloud.count))
            for dot in cloud {
                out.varint(UInt64(dot.replica.rawValue))
                out.varint(dot.counter)
            }
            return ContentHash128.of(UnsafeRawBufferPointer(rebasing: buffer[..<out.count]))
        }
        return (hash + elementDigest).high
    }
}

/// Bytes written into a buffer sized for them beforehand, the way a
/// BinaryWriter writes them (LEB128 varints, big-endian words). Each write
/// checks its room once, not byte by byte.
private struct StackBytes {
    private let base: UnsafeMutableRawPointer
    private let capacity: Int
    private(set) var count = 0

    init(_ buffer: UnsafeMutableRawBufferPointer) {
        base = buffer.baseAddress!
        capacity = buffer.count
    }

    @inline(__always)
    mutating func byte(_ value: UInt8) {
        precondition(count < capacity, "state hash buffer too small")
        base.storeBytes(of: value, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    @inline(__always)
    mutating func varint(_ value: UInt64) {
        precondition(count + 10 <= capacity, "state hash buffer too small")
        var v = value
        while v >= 0x80 {
            base.storeBytes(of: UInt8(truncatingIfNeeded: v) | 0x80, toByteOffset: count, as: UInt8.self)
            count += 1
            v >>= 7
        }
        base.storeBytes(of: UInt8(v), toByteOffset: count, as: UInt8.self)
        count += 1
    }

    @inline(__always)
    mutating func word(_ value: UInt64) {
        precondition(count + 8 <= capacity, "state hash buffer too small")
        base.storeBytes(of: value.bigEndian, toByteOffset: count, as: UInt64.self)
        count += 8
    }

    mutating func utf8(_ text: String) {
        var text = text
        text.withUTF8 { utf8 in
            varint(UInt64(utf8.count))
            precondition(count + utf8.count <= capacity, "state hash buffer too small")
            if let source = utf8.baseAddress { (base + count).copyMemory(from: source, byteCount: utf8.count) }
            count += utf8.count
        }
    }
}

/// Feeds an element's content straight into a 128-bit hash, without building
/// its byte encoding (the incremental segment hash runs on every merge).
struct ElementHasher {
    private var a: UInt64 = 0x9E37_79B9_7F4A_7C15
    private var b: UInt64 = 0xC2B2_AE3D_27D4_EB4F

    @inline(__always)
    mutating func add(_ word: UInt64) {
        a = (a ^ word) &* 0x0000_0100_0000_01B3 &+ 0x27BB_2EE6_87B0_B0FD
        a = (a << 29) | (a >> 35)
        b = (b &+ word) &* 0x9FB2_1C65_1E98_DF25
        b ^= b >> 31
    }

    mutating func add(_ dot: Dot) {
        add(UInt64(dot.replica.rawValue))
        add(dot.counter)
    }

    mutating func add(_ vector: VersionVector) {
        add(UInt64(vector.entries.count))
        for entry in vector.entries {
            add(UInt64(entry.replica.rawValue))
            add(entry.counter)
        }
    }

    @inline(__always)
    mutating func add(_ text: String) {
        text.withUTF8InPlace { add($0) }
    }

    mutating func add(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { add($0) }
    }

    @inline(__always)
    mutating func add(_ buffer: UnsafeBufferPointer<UInt8>) {
        add(UInt64(buffer.count) | 0xA5A5_0000_0000_0000)
        var offset = 0
        let count = buffer.count
        guard let base = buffer.baseAddress else { return }
        let raw = UnsafeRawPointer(base)
        while offset + 8 <= count {
            add(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)))
            offset += 8
        }
        add(raw.littleEndianTail(from: offset, count: count))
    }

    mutating func add<Value: RegisterPayload>(_ register: MultiValueRegister<Value>) {
        add(register.covered)
        add(UInt64(register.values.count))
        // Read in place: a `for value in` loop copies each value, retaining its strings.
        register.values.withUnsafeBufferPointer { values in
            for index in values.indices {
                add(values[index].dot)
                add(values[index].stamp.rawValue)
                add(values[index].author)
                values[index].value.hashPayload(into: &self)
            }
        }
    }

    var result: ContentHash128 { ContentHash128(high: ContentHash128.mix(a ^ (b >> 7)), low: ContentHash128.mix(b &+ a)) }

    /// The content hash of a whole op (its dot, segment, stamp, author, context and payload).
    static func fingerprint(of op: SyncOperation) -> ContentHash128 {
        var h = ElementHasher()
        h.add(op.dot)
        h.add(op.segment.household.high)
        h.add(op.segment.household.low)
        h.add(op.segment.purpose.rawValue)
        h.add(UInt64(op.epoch))
        h.add(op.stamp.rawValue)
        h.add(op.author)
        h.add(op.context)
        switch op.payload {
        case .createHousehold:
            h.add(0)
        case .set(let field, let value, let resolves):
            h.add(1)
            h.add(field)
            h.add(value)
            h.add(UInt64(resolves.count))
            for dot in resolves { h.add(dot) }
        case .append(let log, let body):
            h.add(2)
            h.add(log)
            h.add(body.kind)
            h.add(body.occurredAt)
            h.add(body.text)
            if let correction = body.correctionOf { h.add(correction) } else { h.add(UInt64.max) }
        case .insert(let collection, let position, let text):
            h.add(3)
            h.add(collection)
            h.add(position)
            h.add(text)
        case .edit(let collection, let item, let field, let value):
            h.add(4)
            h.add(collection)
            h.add(item)
            h.add(field == .text ? 0 : 1)
            h.add(value)
        case .move(let collection, let item, let position):
            h.add(5)
            h.add(collection)
            h.add(item)
            h.add(position)
        case .remove(let collection, let item):
            h.add(6)
            h.add(collection)
            h.add(item)
        }
        return h.result
    }

    /// The content hash of one element: a function of its canonical content.
    static func digest(of element: SegmentElement) -> ContentHash128 {
        switch element {
        case .creation(let record): return digest(creation: record)
        case .field(let name, let register): return digest(field: name, register: register)
        case .logEntry(let log, let entry): return digest(log: log, entry: entry)
        case .item(let collection, let item): return digest(collection: collection, item: item)
        }
    }

    // One function per element kind, so that a state can hash an element where
    // it lies (SegmentState.elementHash) without building a SegmentElement.

    static func digest(creation record: borrowing CreationRecord) -> ContentHash128 {
        var h = ElementHasher()
        h.add(0)
        h.add(record.dot)
        h.add(record.stamp.rawValue)
        h.add(record.author)
        return h.result
    }

    static func digest(field name: String, register: borrowing MultiValueRegister<String>) -> ContentHash128 {
        var h = ElementHasher()
        h.add(1)
        h.add(name)
        h.add(register)
        return h.result
    }

    static func digest(log: String, entry: borrowing LogEntry) -> ContentHash128 {
        var h = ElementHasher()
        h.add(2)
        h.add(log)
        h.add(entry.dot)
        h.add(entry.stamp.rawValue)
        h.add(entry.author)
        h.add(entry.body.kind)
        h.add(entry.body.occurredAt)
        h.add(entry.body.text)
        if let correction = entry.body.correctionOf { h.add(correction) } else { h.add(UInt64.max) }
        return h.result
    }

    static func digest(collection: String, item: borrowing CollectionItem) -> ContentHash128 {
        var h = ElementHasher()
        h.add(3)
        h.add(collection)
        h.add(item.id)
        item.hashBasePosition(into: &h)
        h.add(item.text)
        h.add(item.status)
        h.add(item.position)
        item.hashWrites(into: &h)
        h.add(item.writeCover)
        h.add(UInt64(item.removes.count))
        for dot in item.removes { h.add(dot) }
        h.add(item.removeCover)
        return h.result
    }
}

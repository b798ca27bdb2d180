/// Binary form of op lists. Consecutive ops of one (segment, epoch, replica,
/// author) form a group whose header is written once; inside a group the
/// dense counter and the carried context are implied when they follow from
/// the previous op, so a field write costs a flags byte, a stamp delta, the
/// field's table index and its value.
enum OperationListCodec {
    private static let denseCounter: UInt8 = 1 << 3
    private static let expectedContext: UInt8 = 1 << 4
    private static let hasAbsorbs: UInt8 = 1 << 5

    static func encode(_ ops: [SyncOperation], to writer: inout BinaryWriter) {
        var index = 0
        var previousHousehold: HouseholdID?
        // Count groups first so the decoder can bound its loop.
        var groups: [Range<Int>] = []
        while index < ops.count {
            var end = index + 1
            while end < ops.count, sameGroup(ops[index], ops[end]) { end += 1 }
            groups.append(index..<end)
            index = end
        }
        writer.varint(groups.count)
        for group in groups {
            // The group's first op, read part by part: read whole, it was copied (every string and list retained).
            let first = group.lowerBound
            let household = ops[first].segment.household
            if household == previousHousehold {
                writer.byte(1)
            } else {
                writer.byte(0)
                writer.household(household)
            }
            previousHousehold = household
            writer.symbol(ops[first].segment.purpose.rawValue)
            writer.varint(UInt64(ops[first].epoch))
            writer.varint(UInt64(ops[first].dot.replica.rawValue))
            writer.symbol(ops[first].author)
            writer.varint(group.count)
            // Each op is read where it lies: `let op = ops[index]` copied it (its strings,
            // context and payload retained) and released the copy again.
            ops.withUnsafeBufferPointer { ops in
                for index in group {
                    let op = ops.baseAddress! + index
                    var flags = tag(of: op.pointee.payload)
                    // The previous op of the group, read in place: what this op's counter and context are expected to be.
                    let previous = index > group.lowerBound ? index - 1 : nil
                    if let previous {
                        if op.pointee.dot.counter == ops[previous].dot.counter &+ 1 { flags |= denseCounter }
                        if op.pointee.context.equalsRaised(ops[previous].context, ops[previous].dot.replica, to: ops[previous].dot.counter) {
                            flags |= expectedContext
                        }
                    }
                    if op.pointee.absorbs != nil { flags |= hasAbsorbs }
                    writer.byte(flags)
                    if flags & denseCounter == 0 { writer.varint(op.pointee.dot.counter) }
                    if flags & expectedContext == 0 {
                        writer.vector(op.pointee.context, relativeTo: previous.map { ops[$0].contextAfter } ?? VersionVector())
                    }
                    writer.stamp(op.pointee.stamp)
                    encodePayload(op.pointee.payload, stampMilliseconds: op.pointee.stamp.milliseconds, to: &writer)
                    if let absorbs = op.pointee.absorbs {
                        // Distances below the op's own counter: usually one byte each.
                        writer.varint(absorbs.count)
                        for counter in absorbs { writer.varint(op.pointee.dot.counter &- counter) }
                    }
                }
            }
        }
    }

    static func decode(from reader: inout BinaryReader) throws(SyncCoreError) -> [SyncOperation] {
        let groupCount = try reader.count(minimumSize: 4)
        var ops: [SyncOperation] = []
        var previousHousehold: HouseholdID?
        for _ in 0..<groupCount {
            let household: HouseholdID
            switch try reader.byte() {
            case 0: household = try reader.household()
            case 1:
                guard let previousHousehold else { throw BinaryReader.malformed("missing household") }
                household = previousHousehold
            default: throw BinaryReader.malformed("bad group header")
            }
            previousHousehold = household
            let purpose = Purpose(try reader.symbol())
            let epoch = try reader.uint32()
            let replica = ReplicaID(try reader.uint32())
            let author = try reader.symbol()
            let count = try reader.count(minimumSize: 3)
            guard count > 0 else { throw BinaryReader.malformed("empty group") }
            for position in 0..<count {
                let flags = try reader.byte()
                // The group's previous op is the last one decoded (read in place, not copied).
                let hasPrevious = position > 0
                let expected = hasPrevious ? ops[ops.count - 1].contextAfter : VersionVector()
                let counter: UInt64
                if flags & denseCounter != 0 {
                    guard hasPrevious else { throw BinaryReader.malformed("dense counter without a previous op") }
                    counter = ops[ops.count - 1].dot.counter &+ 1
                } else {
                    counter = try reader.varint()
                }
                // Bounded here, before any arithmetic on it (the validator refuses the same range).
                guard counter > 0, counter <= Dot.maxCounter else { throw BinaryReader.malformed("counter out of range") }
                let context: VersionVector
                if flags & expectedContext != 0 {
                    guard hasPrevious else { throw BinaryReader.malformed("implied context without a previous op") }
                    context = expected
                } else {
                    context = try reader.vector(relativeTo: expected)
                }
                let stamp = try reader.stamp()
                let payload = try decodePayload(tag: flags & 0x07, stampMilliseconds: stamp.milliseconds, from: &reader)
                var absorbs: [UInt64]?
                if flags & hasAbsorbs != 0 {
                    var list: [UInt64] = []
                    for _ in 0..<(try reader.count(minimumSize: 1)) {
                        let distance = try reader.varint()
                        guard distance > 0, distance < counter else { throw BinaryReader.malformed("bad absorbed counter") }
                        list.append(counter - distance)
                    }
                    absorbs = list
                }
                // Made in the list: an op made first and appended was copied in (every string
                // retained) and the original released.
                ops.append(SyncOperation(dot: Dot(replica: replica, counter: counter),
                                         segment: SegmentKey(household: household, purpose: purpose),
                                         epoch: epoch, stamp: stamp, author: author, context: context, payload: payload))
                if let absorbs { ops[ops.count - 1].absorbs = absorbs }
            }
        }
        return ops
    }

    private static func sameGroup(_ a: SyncOperation, _ b: SyncOperation) -> Bool {
        a.segment == b.segment && a.epoch == b.epoch && a.dot.replica == b.dot.replica && a.author == b.author
    }

    private static func tag(of payload: OperationPayload) -> UInt8 {
        switch payload {
        case .createHousehold: return 0
        case .set: return 1
        case .append: return 2
        case .insert: return 3
        case .edit: return 4
        case .move: return 5
        case .remove: return 6
        }
    }

    private static func encodePayload(_ payload: OperationPayload, stampMilliseconds: UInt64, to writer: inout BinaryWriter) {
        switch payload {
        case .createHousehold:
            break
        case .set(let field, let value, let resolves):
            writer.symbol(field)
            writer.string(value)
            writer.varint(resolves.count)
            for dot in resolves { writer.dot(dot) }
        case .append(let log, let body):
            writer.symbol(log)
            writer.symbol(body.kind)
            // The visit time is usually close to the stamp: write the difference.
            writer.signed(Int64(bitPattern: body.occurredAt &- stampMilliseconds))
            writer.string(body.text)
            if let correction = body.correctionOf {
                writer.byte(1)
                writer.dot(correction)
            } else {
                writer.byte(0)
            }
        case .insert(let collection, let position, let text):
            writer.symbol(collection)
            writer.data(position)
            writer.string(text)
        case .edit(let collection, let item, let field, let value):
            writer.symbol(collection)
            writer.dot(item)
            writer.byte(field == .text ? 0 : 1)
            writer.string(value)
        case .move(let collection, let item, let position):
            writer.symbol(collection)
            writer.dot(item)
            writer.data(position)
        case .remove(let collection, let item):
            writer.symbol(collection)
            writer.dot(item)
        }
    }

    private static func decodePayload(tag: UInt8, stampMilliseconds: UInt64,
                                      from reader: inout BinaryReader) throws(SyncCoreError) -> OperationPayload {
        switch tag {
        case 0:
            return .createHousehold
        case 1:
            let field = try reader.symbol()
            let value = try reader.string()
            var resolves: [Dot] = []
            for _ in 0..<(try reader.count(minimumSize: 2)) { resolves.append(try reader.dot()) }
            return .set(field: field, value: value, resolves: resolves)
        case 2:
            let log = try reader.symbol()
            let kind = try reader.symbol()
            let occurredAt = stampMilliseconds &+ UInt64(bitPattern: try reader.signed())
            let text = try reader.string()
            let correction: Dot? = try reader.bool() ? try reader.dot() : nil
            return .append(log: log, entry: LogEntryBody(kind: kind, occurredAt: occurredAt, text: text, correctionOf: correction))
        case 3:
            let collection = try reader.symbol()
            let position = try reader.data()
            let text = try reader.string()
            return .insert(collection: collection, position: position, text: text)
        case 4:
            let collection = try reader.symbol()
            let item = try reader.dot()
            let field: ItemField
            switch try reader.byte() {
            case 0: field = .text
            case 1: field = .status
            default: throw BinaryReader.malformed("bad item field")
            }
            return .edit(collection: collection, item: item, field: field, value: try reader.string())
        case 5:
            let collection = try reader.symbol()
            let item = try reader.dot()
            return .move(collection: collection, item: item, position: try reader.data())
        case 6:
            let collection = try reader.symbol()
            return .remove(collection: collection, item: try reader.dot())
        default:
            throw BinaryReader.malformed("unknown operation kind")
        }
    }
}

extension SyncOperation {
    /// One op alone in the binary form (for a server's quarantine).
    public func encodedBytes() -> [UInt8] {
        var writer = BinaryWriter(capacity: 64)
        OperationListCodec.encode([self], to: &writer)
        return writer.bytes
    }

    public init(encodedBytes bytes: [UInt8]) throws(SyncCoreError) {
        var reader = BinaryReader(bytes)
        let ops = try OperationListCodec.decode(from: &reader)
        guard ops.count == 1, reader.isAtEnd else { throw BinaryReader.malformed("expected one operation") }
        self = ops[0]
    }
}

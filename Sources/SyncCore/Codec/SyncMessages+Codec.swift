public import Foundation

/// Binary form of the sync messages. A message is a magic byte pair and a list
/// of sections `(tag, length, body)`; each section has its own string table, so
/// a decoder skips sections it does not know (forward compatible) and a newer
/// protocol version is refused with a clear error.
enum MessageFraming {
    static let requestMagic: [UInt8] = [0x46, 0x51]   // "FQ"
    static let responseMagic: [UInt8] = [0x46, 0x52]  // "FR"

    /// The tag of the household table section; it comes first, so every later
    /// section can refer to households by index.
    static let householdTableTag: UInt8 = 30

    /// Writes the household table section and installs the table in `writer`.
    static func householdTable(_ households: [HouseholdID], into writer: inout BinaryWriter) {
        var table: [HouseholdID: UInt32] = [:]
        var ordered: [HouseholdID] = []
        for household in households where table[household] == nil {
            table[household] = UInt32(ordered.count)
            ordered.append(household)
        }
        var inner = BinaryWriter(capacity: ordered.count * 16 + 4)
        inner.varint(ordered.count)
        for household in ordered { inner.rawHousehold(household) }
        writer.byte(householdTableTag)
        writer.data(inner.bytes)
        writer.householdTable = table
    }

    /// Reads sections, handing each known one a fresh reader over its body.
    /// The sections share the message's bytes: each reader reads its window of them.
    static func readSections(_ message: BinaryReader, magic: [UInt8],
                             _ handle: (UInt8, inout BinaryReader) throws(SyncCoreError) -> Bool) throws(SyncCoreError) {
        var reader = message
        guard try reader.raw(2) == magic else {
            throw SyncCoreError(.malformed, "The body is not a FieldSync binary message. Send application/x-fieldsync or application/json.")
        }
        var seen = Set<UInt8>()
        var households: [HouseholdID]?
        while !reader.isAtEnd {
            let tag = try reader.byte()
            let length = try reader.varint()
            guard length <= UInt64(reader.remaining) else { throw BinaryReader.truncated() }
            let body = try reader.window(Int(length))
            guard seen.insert(tag).inserted else { throw BinaryReader.malformed("repeated section") }
            if tag == householdTableTag {
                guard seen.count <= 2 else { throw BinaryReader.malformed("household table after other sections") }
                var table = message.reading(body)
                let count = try table.count(minimumSize: 16)
                var list: [HouseholdID] = []
                list.reserveCapacity(count)
                for _ in 0..<count { list.append(try table.rawHousehold()) }
                guard table.isAtEnd else { throw BinaryReader.malformed("trailing bytes in the household table") }
                households = list
                continue
            }
            var inner = message.reading(body, householdList: households)
            if try handle(tag, &inner) {
                guard inner.isAtEnd else { throw BinaryReader.malformed("trailing bytes in section \(tag)") }
            }
        }
    }

    static func checkVersion(_ version: Int) throws(SyncCoreError) {
        guard version <= syncProtocolVersion else {
            throw SyncCoreError(.unsupportedVersion,
                                "The message uses protocol version \(version); this side speaks \(syncProtocolVersion). Upgrade FieldSync.")
        }
        guard version >= 1 else { throw BinaryReader.malformed("bad protocol version") }
        guard version >= oldestSyncProtocolVersion else {
            throw SyncCoreError(.unsupportedVersion,
                                "The message uses protocol version \(version), which this side no longer reads (it speaks \(syncProtocolVersion)). Upgrade FieldSync on the older side.")
        }
    }

    static func missing(_ what: String) -> SyncCoreError {
        SyncCoreError(.malformed, "The message has no \(what) section.")
    }
}

extension SegmentKey {
    func encode(to writer: inout BinaryWriter) {
        writer.household(household)
        writer.symbol(purpose.rawValue)
    }
    static func decode(from reader: inout BinaryReader) throws(SyncCoreError) -> SegmentKey {
        let household = try reader.household()
        return SegmentKey(household: household, purpose: Purpose(try reader.symbol()))
    }
}

extension SyncCursor {
    func encode(to writer: inout BinaryWriter) {
        writer.varint(seq)
        if let resumeAfter {
            writer.byte(1)
            resumeAfter.encode(to: &writer)
            writer.varint(resumeSeq ?? seq)
        } else {
            writer.byte(0)
        }
    }
    static func decode(from reader: inout BinaryReader) throws(SyncCoreError) -> SyncCursor {
        let seq = try reader.varint()
        guard try reader.bool() else { return SyncCursor(seq: seq) }
        let resume = try SegmentKey.decode(from: &reader)
        return SyncCursor(seq: seq, resumeAfter: resume, resumeSeq: try reader.varint())
    }
}

extension SegmentPatch {
    /// A cheap, rough estimate of the patch's encoded size (text and a few
    /// bytes per element; a goal's positions and covers are not counted): for
    /// paging a pull, and to size a response's buffer.
    var estimatedSize: Int {
        var size = 32
        for element in elements {
            switch element {
            case .creation: size += 16
            case .field(_, let register): size += 12 + register.values.reduce(0) { $0 + 16 + $1.value.utf8.count }
            case .logEntry(_, let entry): size += 24 + entry.body.text.utf8.count
            case .item(_, let item): size += 48 + item.text.values.reduce(0) { $0 + $1.value.utf8.count }
            }
        }
        return size
    }

    func encode(to writer: inout BinaryWriter) {
        segment.encode(to: &writer)
        writer.varint(UInt64(epoch))
        writer.context(context)
        writer.varint(elements.count)
        for element in elements { element.encode(to: &writer, base: context.vector) }
    }
    static func decode(from reader: inout BinaryReader) throws(SyncCoreError) -> SegmentPatch {
        let segment = try SegmentKey.decode(from: &reader)
        let epoch = try reader.uint32()
        let context = try reader.context()
        let n = try reader.count(minimumSize: 3)
        var elements: [SegmentElement] = []
        elements.reserveCapacity(n)
        for _ in 0..<n { elements.append(try SegmentElement.decode(from: &reader, base: context.vector)) }
        return SegmentPatch(segment: segment, epoch: epoch, context: context, elements: elements)
    }
}

extension PolicyContext {
    func encode(to writer: inout BinaryWriter) {
        writer.symbol(user)
        writer.symbol(role)
        let purposes = rolePurposes.sorted { $0.key < $1.key }
        writer.varint(purposes.count)
        for (purpose, access) in purposes {
            writer.symbol(purpose.rawValue)
            writer.byte(access == .write ? 1 : 0)
        }
        writer.varint(assignments.count)
        for assignment in assignments {
            writer.household(assignment.household)
            writer.varint(assignment.until.map { $0 + 1 } ?? 0)
        }
        writer.varint(grants.count)
        for grant in grants {
            writer.symbol(grant.purpose.rawValue)
            writer.byte(grant.access == .write ? 1 : 0)
            if let household = grant.household {
                writer.byte(1)
                writer.household(household)
            } else {
                writer.byte(0)
            }
            writer.varint(grant.until.map { $0 + 1 } ?? 0)
        }
        writer.varint(consentBlocks.count)
        for block in consentBlocks {
            writer.household(block.household)
            writer.symbol(block.purpose?.rawValue ?? "")
        }
        writer.varint(version)
        writer.varint(serverTime)
        let households = involvement.keys.sorted()
        writer.varint(households.count)
        for household in households {
            writer.household(household)
            let entries = involvement[household]!
            writer.varint(entries.count)
            for entry in entries {
                writer.symbol(entry.user)
                writer.symbol(entry.role)
                writer.varint(entry.purposes.count)
                for purpose in entry.purposes { writer.symbol(purpose.rawValue) }
                writer.symbol(entry.contact)
                writer.bool(entry.restricted)
            }
        }
        writer.bool(requiresDevicePassphrase)
    }

    static func decode(from reader: inout BinaryReader) throws(SyncCoreError) -> PolicyContext {
        func access(_ byte: UInt8) throws(SyncCoreError) -> Access {
            switch byte {
            case 0: return .read
            case 1: return .write
            default: throw BinaryReader.malformed("bad access")
            }
        }
        func until(_ raw: UInt64) -> UInt64? { raw == 0 ? nil : raw - 1 }
        let user = try reader.symbol()
        let role = try reader.symbol()
        var rolePurposes: [Purpose: Access] = [:]
        for _ in 0..<(try reader.count(minimumSize: 2)) {
            let purpose = Purpose(try reader.symbol())
            rolePurposes[purpose] = try access(try reader.byte())
        }
        var assignments: [Assignment] = []
        for _ in 0..<(try reader.count(minimumSize: 2)) {
            let household = try reader.household()
            assignments.append(Assignment(household: household, until: until(try reader.varint())))
        }
        var grants: [Grant] = []
        for _ in 0..<(try reader.count(minimumSize: 4)) {
            let purpose = Purpose(try reader.symbol())
            let level = try access(try reader.byte())
            let household: HouseholdID? = try reader.bool() ? try reader.household() : nil
            grants.append(Grant(purpose: purpose, access: level, household: household, until: until(try reader.varint())))
        }
        var blocks: [ConsentBlock] = []
        for _ in 0..<(try reader.count(minimumSize: 2)) {
            let household = try reader.household()
            let code = try reader.symbol()
            blocks.append(ConsentBlock(household: household, purpose: code.isEmpty ? nil : Purpose(code)))
        }
        let version = try reader.varint()
        let serverTime = try reader.varint()
        var involvement: [HouseholdID: [Involvement]] = [:]
        for _ in 0..<(try reader.count(minimumSize: 2)) {
            let household = try reader.household()
            var entries: [Involvement] = []
            for _ in 0..<(try reader.count(minimumSize: 5)) {
                let user = try reader.symbol()
                let role = try reader.symbol()
                var purposes: [Purpose] = []
                for _ in 0..<(try reader.count(minimumSize: 1)) { purposes.append(Purpose(try reader.symbol())) }
                let contact = try reader.symbol()
                let restricted = try reader.bool()
                entries.append(Involvement(user: user, role: role, purposes: purposes, contact: contact, restricted: restricted))
            }
            involvement[household] = entries
        }
        let requiresPassphrase = try reader.bool()
        return PolicyContext(user: user, role: role, rolePurposes: rolePurposes, assignments: assignments, grants: grants,
                             consentBlocks: blocks, version: version, serverTime: serverTime, involvement: involvement,
                             requiresDevicePassphrase: requiresPassphrase)
    }
}

extension SyncRequest: BinaryCodable {
    /// The ops' text and some 48 bytes of each op's other parts.
    public var encodedSizeHint: Int {
        256 + held.digest.bytes.count + (held.segments?.count ?? 0) * 4 + auditEvents.count * 48
            + ops.reduce(0) { $0 + 48 + $1.payload.textByteCount }
    }

    public func encode(to writer: inout BinaryWriter) {
        writer.raw(MessageFraming.requestMagic)
        writer.section(1) { $0.varint(version) }
        MessageFraming.householdTable(householdsReferenced, into: &writer)
        writer.section(2) { cursor.encode(to: &$0) }
        writer.section(3) { HexBytes.encode(schemaHash, to: &$0) }
        if let policyDigest { writer.section(8) { $0.raw(policyDigest.bytes) } }
        writer.section(4) { w in
            w.data(held.digest.bytes)
            if let segments = held.segments {
                w.byte(1)
                w.varint(segments.count)
                for held in segments {
                    held.segment.encode(to: &w)
                    w.varint(UInt64(held.epoch))
                }
            } else {
                w.byte(0)
            }
        }
        if !ops.isEmpty { writer.section(5) { OperationListCodec.encode(ops, to: &$0) } }
        if !auditEvents.isEmpty {
            writer.section(6) { w in
                w.varint(auditEvents.count)
                for event in auditEvents {
                    w.varint(event.deviceSeq)
                    w.data(event.prevHash.bytes)
                    w.household(event.household)
                    w.symbol(event.purpose?.rawValue ?? "")
                    w.symbol(event.action)
                    w.varint(event.at)
                    w.varint(event.count)
                }
            }
        }
        writer.section(7) { $0.varint(limit) }
    }

    public init(from reader: inout BinaryReader) throws(SyncCoreError) {
        let rest = reader.rest
        _ = try reader.window(reader.remaining)  // the sections read it all
        var version: Int?
        var cursor: SyncCursor?
        var schemaHash = ""
        var held: HeldSet?
        var ops: [SyncOperation] = []
        var events: [AuditEvent] = []
        var limit = 4 << 20
        var policyDigest: Digest?
        try MessageFraming.readSections(rest, magic: MessageFraming.requestMagic) { (tag, r) throws(SyncCoreError) -> Bool in
            switch tag {
            case 1:
                version = try r.int()
                try MessageFraming.checkVersion(version!)
            case 2: cursor = try SyncCursor.decode(from: &r)
            case 3: schemaHash = try HexBytes.decode(from: &r)
            case 8: policyDigest = Digest(try r.raw(r.remaining))
            case 4:
                let digest = Digest(try r.data())
                var segments: [HeldSegment]?
                if try r.bool() {
                    var list: [HeldSegment] = []
                    for _ in 0..<(try r.count(minimumSize: 3)) {
                        let segment = try SegmentKey.decode(from: &r)
                        list.append(HeldSegment(segment: segment, epoch: try r.uint32()))
                    }
                    segments = list
                }
                held = HeldSet(digest: digest, segments: segments)
            case 5: ops = try OperationListCodec.decode(from: &r)
            case 6:
                for _ in 0..<(try r.count(minimumSize: 4)) {
                    let seq = try r.varint()
                    let prev = Digest(try r.data())
                    let household = try r.household()
                    let code = try r.symbol()
                    let action = try r.symbol()
                    let at = try r.varint()
                    let count = try r.int()
                    events.append(AuditEvent(deviceSeq: seq, prevHash: prev, household: household,
                                             purpose: code.isEmpty ? nil : Purpose(code), action: action, at: at, count: count))
                }
            case 7: limit = try r.int()
            default:
                guard version != nil else { throw MessageFraming.missing("version") }
                return false  // unknown section from a newer client: skip
            }
            return true
        }
        guard let version else { throw MessageFraming.missing("version") }
        guard let cursor else { throw MessageFraming.missing("cursor") }
        guard let held else { throw MessageFraming.missing("held") }
        self.init(version: version, cursor: cursor, schemaHash: schemaHash, held: held, ops: ops, auditEvents: events, limit: limit,
                  policyDigest: policyDigest)
    }
}

extension SyncResponse: BinaryCodable {
    /// The patches' estimates and a little for the rest (the buffer grows if it is short).
    public var encodedSizeHint: Int {
        256 + deltas.reduce(0) { $0 + $1.estimatedSize } + snapshots.reduce(0) { $0 + $1.estimatedSize }
            + (accepted.count + rejected.count + purge.count + epochs.count) * 8
    }

    public func encode(to writer: inout BinaryWriter) {
        writer.raw(MessageFraming.responseMagic)
        writer.section(1) { $0.varint(version) }
        MessageFraming.householdTable(householdsReferenced, into: &writer)
        if !accepted.isEmpty {
            writer.section(2) { w in
                w.varint(accepted.count)
                for range in accepted {
                    range.segment.encode(to: &w)
                    w.varint(UInt64(range.replica.rawValue))
                    w.varint(range.first)
                    w.varint(range.last - range.first)
                }
            }
        }
        if !rejected.isEmpty {
            writer.section(3) { w in
                w.varint(rejected.count)
                for rejection in rejected {
                    rejection.segment.encode(to: &w)
                    w.varint(UInt64(rejection.epoch))
                    w.dot(rejection.dot)
                    w.symbol(rejection.reason.rawValue)
                }
            }
        }
        if !deltas.isEmpty {
            writer.section(4) { w in
                w.varint(deltas.count)
                for patch in deltas { patch.encode(to: &w) }
            }
        }
        if !snapshots.isEmpty {
            writer.section(5) { w in
                w.varint(snapshots.count)
                for patch in snapshots { patch.encode(to: &w) }
            }
        }
        if !purge.isEmpty {
            writer.section(6) { w in
                w.varint(purge.count)
                for instruction in purge {
                    instruction.segment.encode(to: &w)
                    w.varint(UInt64(instruction.epoch))
                    w.symbol(instruction.reason)
                }
            }
        }
        if let policy { writer.section(7) { policy.encode(to: &$0) } }
        if let schema {
            writer.section(8) { w in
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                w.data(Array((try? encoder.encode(schema)) ?? Data()))
            }
        }
        writer.section(9) { cursor.encode(to: &$0) }
        if more { writer.section(10) { $0.bool(true) } }
        if needHeld { writer.section(11) { $0.bool(true) } }
        // Section 12 held one hash per segment (until December 2026); a reader skips it.
        if let stateCheck {
            writer.section(17) { w in
                w.data(stateCheck.digest.bytes)
                w.varint(stateCheck.alsoCovers.count)
                for held in stateCheck.alsoCovers {
                    held.segment.encode(to: &w)
                    w.varint(UInt64(held.epoch))
                }
            }
        }
        if auditAck > 0 { writer.section(13) { $0.varint(auditAck) } }
        writer.section(14) { $0.varint(serverTime) }
        writer.section(15) { $0.varint(maxBody) }
        if !epochs.isEmpty {
            writer.section(16) { w in
                w.varint(epochs.count)
                for held in epochs {
                    held.segment.encode(to: &w)
                    w.varint(UInt64(held.epoch))
                }
            }
        }
    }

    public init(from reader: inout BinaryReader) throws(SyncCoreError) {
        let rest = reader.rest
        _ = try reader.window(reader.remaining)  // the sections read it all
        var version: Int?
        var response = SyncResponse(policy: nil, cursor: .start, serverTime: 0, maxBody: 0)
        var sawCursor = false
        try MessageFraming.readSections(rest, magic: MessageFraming.responseMagic) { (tag, r) throws(SyncCoreError) -> Bool in
            switch tag {
            case 1:
                version = try r.int()
                try MessageFraming.checkVersion(version!)
                response.version = version!
            case 2:
                for _ in 0..<(try r.count(minimumSize: 4)) {
                    let segment = try SegmentKey.decode(from: &r)
                    let replica = ReplicaID(try r.uint32())
                    let first = try r.varint()
                    let span = try r.varint()
                    guard first > 0, span < (1 << 40) else { throw BinaryReader.malformed("bad accepted range") }
                    response.accepted.append(AcceptedRange(segment: segment, replica: replica, first: first, last: first + span))
                }
            case 3:
                for _ in 0..<(try r.count(minimumSize: 4)) {
                    let segment = try SegmentKey.decode(from: &r)
                    let epoch = try r.uint32()
                    let dot = try r.dot()
                    response.rejected.append(RejectedOp(segment: segment, epoch: epoch, dot: dot, reason: RefusalReason(try r.symbol())))
                }
            case 4:
                for _ in 0..<(try r.count(minimumSize: 4)) { response.deltas.append(try SegmentPatch.decode(from: &r)) }
            case 5:
                for _ in 0..<(try r.count(minimumSize: 4)) { response.snapshots.append(try SegmentPatch.decode(from: &r)) }
            case 6:
                for _ in 0..<(try r.count(minimumSize: 3)) {
                    let segment = try SegmentKey.decode(from: &r)
                    let epoch = try r.uint32()
                    response.purge.append(PurgeInstruction(segment: segment, epoch: epoch, reason: try r.symbol()))
                }
            case 7:
                response.policy = try PolicyContext.decode(from: &r)
            case 8:
                let json = try r.data()
                response.schema = try Schema.load(json: Data(json))
            case 9:
                response.cursor = try SyncCursor.decode(from: &r)
                sawCursor = true
            case 10: response.more = try r.bool()
            case 11: response.needHeld = try r.bool()
            case 17:
                let digest = Digest(try r.data())
                var covers: [HeldSegment] = []
                for _ in 0..<(try r.count(minimumSize: 3)) {
                    let segment = try SegmentKey.decode(from: &r)
                    covers.append(HeldSegment(segment: segment, epoch: try r.uint32()))
                }
                response.stateCheck = StateCheck(alsoCovers: covers, digest: digest)
            case 13: response.auditAck = try r.varint()
            case 14: response.serverTime = try r.varint()
            case 15: response.maxBody = try r.int()
            case 16:
                for _ in 0..<(try r.count(minimumSize: 3)) {
                    let segment = try SegmentKey.decode(from: &r)
                    response.epochs.append(HeldSegment(segment: segment, epoch: try r.uint32()))
                }
            default:
                guard version != nil else { throw MessageFraming.missing("version") }
                return false
            }
            return true
        }
        guard version != nil else { throw MessageFraming.missing("version") }
        guard sawCursor else { throw MessageFraming.missing("cursor") }
        self = response
    }
}

/// JSON forms of the same messages, for debugging and curl.
public enum MessageJSON {
    public static func encode<T: Encodable>(_ value: T) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(value)) ?? Data("{}".utf8)
    }

    /// Decodes JSON with a typed error naming the problem, never a crash.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws(SyncCoreError) -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let DecodingError.keyNotFound(key, _) {
            throw SyncCoreError(.malformed, "The JSON body is missing \"\(key.stringValue)\".")
        } catch let DecodingError.typeMismatch(_, context) {
            throw SyncCoreError(.malformed, "The JSON body has a value of the wrong type at \(path(context.codingPath)).")
        } catch let DecodingError.valueNotFound(_, context) {
            throw SyncCoreError(.malformed, "The JSON body has a null at \(path(context.codingPath)).")
        } catch let DecodingError.dataCorrupted(context) {
            throw SyncCoreError(.malformed, "The JSON body is not valid at \(path(context.codingPath)).")
        } catch {
            throw SyncCoreError(.malformed, "The JSON body could not be read.")
        }
    }

    private static func path(_ codingPath: [any CodingKey]) -> String {
        codingPath.isEmpty ? "the top level" : codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
}

extension SyncRequest {
    /// Every household the binary form refers to, for the message's table.
    var householdsReferenced: [HouseholdID] {
        var result = held.segments?.map(\.segment.household) ?? []
        if let resume = cursor.resumeAfter { result.append(resume.household) }
        result += ops.map(\.segment.household)
        result += auditEvents.map(\.household)
        return result
    }
}

extension SyncResponse {
    var householdsReferenced: [HouseholdID] {
        var result = accepted.map(\.segment.household)
        if let resume = cursor.resumeAfter { result.append(resume.household) }
        result += rejected.map(\.segment.household)
        result += deltas.map(\.segment.household)
        result += snapshots.map(\.segment.household)
        result += purge.map(\.segment.household)
        result += stateCheck?.alsoCovers.map(\.segment.household) ?? []
        result += epochs.map(\.segment.household)
        if let policy {
            result += policy.assignments.map(\.household)
            result += policy.grants.compactMap(\.household)
            result += policy.consentBlocks.map(\.household)
            result += policy.involvement.keys.sorted()
        }
        return result
    }
}

/// A hex string (a content hash) sent as its bytes: half the size.
enum HexBytes {
    static func encode(_ text: String, to writer: inout BinaryWriter) {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0, utf8.count <= 128, utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
            writer.byte(0)
            writer.string(text)
            return
        }
        writer.byte(1)
        var bytes: [UInt8] = []
        var index = 0
        while index < utf8.count {
            func nibble(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : c - 87 }
            bytes.append(nibble(utf8[index]) << 4 | nibble(utf8[index + 1]))
            index += 2
        }
        writer.data(bytes)
    }

    static func decode(from reader: inout BinaryReader) throws(SyncCoreError) -> String {
        switch try reader.byte() {
        case 0: return try reader.string()
        case 1: return SHA256Digest.hex(try reader.data())
        default: throw BinaryReader.malformed("bad hash form")
        }
    }
}

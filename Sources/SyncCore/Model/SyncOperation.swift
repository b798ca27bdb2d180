/// One change made on one replica to one segment (DESIGN §3). Its dot is its
/// identity: applying the same dot twice is a no-op.
public struct SyncOperation: Hashable, Sendable, Codable {
    public var dot: Dot
    public var segment: SegmentKey
    /// The segment epoch the author wrote for; an erasure raises it (DESIGN §6).
    public var epoch: UInt32
    public var stamp: HLCTimestamp
    /// The user name of the author; the device is the dot's replica.
    public var author: String
    /// The author's causal context of the segment when writing (not including `dot`).
    public var context: VersionVector
    public var payload: OperationPayload
    /// Counters of the author's own earlier writes to the same field that this
    /// write supersedes and that were left out of the request (set ops only;
    /// see `ClientReplica.requestOps`). They share this op's
    /// verdict and are recorded as seen; their drafts never leave the device.
    public var absorbs: [UInt64]?

    public init(dot: Dot, segment: SegmentKey, epoch: UInt32, stamp: HLCTimestamp, author: String,
                context: VersionVector, payload: OperationPayload) {
        self.dot = dot
        self.segment = segment
        self.epoch = epoch
        self.stamp = stamp
        self.author = author
        self.context = context
        self.payload = payload
    }
}

extension SyncOperation {
    /// The context an op's author had right after writing it: its own context
    /// with its own dot. The op codec expects the next op of a group to carry it.
    var contextAfter: VersionVector {
        var context = self.context
        context.raise(dot.replica, to: dot.counter)
        return context
    }
}

/// The part of an item in a collection that an edit changes.
public enum ItemField: String, Hashable, Sendable, Codable, CaseIterable {
    case text
    case status
}

/// What an operation does.
public enum OperationPayload: Hashable, Sendable, Codable {
    /// Creates a household (REGIE segment). Accepted only for an ID the server never saw.
    case createHousehold
    /// Writes a field. `resolves` lists the value IDs this write settles (a resolve);
    /// they must be inside the op's context. Empty for an ordinary write.
    case set(field: String, value: String, resolves: [Dot])
    /// Appends an immutable entry to a log.
    case append(log: String, entry: LogEntryBody)
    /// Inserts an item into a collection; the op's dot becomes the item's ID.
    case insert(collection: String, position: [UInt8], text: String)
    /// Edits one register of an item.
    case edit(collection: String, item: Dot, field: ItemField, value: String)
    /// Moves an item to a new position.
    case move(collection: String, item: Dot, position: [UInt8])
    /// Removes an item; the context states which adds and edits the author had seen.
    case remove(collection: String, item: Dot)

    /// How many bytes of text and position the payload carries.
    var textByteCount: Int {
        switch self {
        case .createHousehold, .remove: return 0
        case .set(_, let value, _): return value.utf8.count
        case .append(_, let entry): return entry.text.utf8.count
        case .insert(_, let position, let text): return position.count + text.utf8.count
        case .edit(_, _, _, let value): return value.utf8.count
        case .move(_, _, let position): return position.count
        }
    }

    /// The text a worker wrote in this change (a value, an entry, a goal or its status), if any:
    /// what a device shows of its own rejected change so that nothing typed is lost to its author.
    public var writtenText: String? {
        switch self {
        case .createHousehold, .move, .remove: return nil
        case .set(_, let value, _): return value
        case .append(_, let entry): return entry.text
        case .insert(_, _, let text): return text
        case .edit(_, _, _, let value): return value
        }
    }

    /// The schema name this payload refers to (field, log or collection), if any.
    public var targetName: String? {
        switch self {
        case .createHousehold: return nil
        case .set(let field, _, _): return field
        case .append(let log, _): return log
        case .insert(let collection, _, _), .edit(let collection, _, _, _),
             .move(let collection, _, _), .remove(let collection, _): return collection
        }
    }

    /// The item an op refers to, for ops on existing items.
    public var referencedItem: Dot? {
        switch self {
        case .edit(_, let item, _, _), .move(_, let item, _), .remove(_, let item): return item
        default: return nil
        }
    }

    /// Whether the op refers to an element already in its segment (an item,
    /// or the log entry it corrects), which its validation must find.
    var refersToElement: Bool {
        switch self {
        case .edit, .move, .remove: return true
        case .append(_, let body): return body.correctionOf != nil
        case .createHousehold, .set, .insert: return false
        }
    }

    /// A short kind name for audit rows and metrics (never content).
    public var kindName: String {
        switch self {
        case .createHousehold: return "createHousehold"
        case .set(_, _, let resolves): return resolves.isEmpty ? "set" : "resolve"
        case .append: return "append"
        case .insert: return "insert"
        case .edit: return "edit"
        case .move: return "move"
        case .remove: return "remove"
        }
    }
}

/// The content of a log entry as its author wrote it.
public struct LogEntryBody: Hashable, Sendable, Codable {
    /// huisbezoek, telefoon, overleg, signaal, … (schema-checked).
    public var kind: String
    /// When the contact happened (milliseconds since 1970), set by the worker.
    public var occurredAt: UInt64
    public var text: String
    /// The entry this one corrects, if it is a correction.
    public var correctionOf: Dot? {
        get { correction.counter == 0 ? nil : correction }
        set { correction = Self.stored(newValue) }
    }
    /// Counter 0 stands for "not a correction": real counters start at 1
    /// (both decoders refuse 0), and an optional would add 8 bytes to every
    /// log entry a server or device holds.
    private var correction: Dot
    private static let noCorrection = Dot(replica: ReplicaID(0), counter: 0)
    /// One stored form per value: a dot with counter 0 names no entry, so it is none.
    private static func stored(_ dot: Dot?) -> Dot { dot.flatMap { $0.counter == 0 ? nil : $0 } ?? noCorrection }

    public init(kind: String, occurredAt: UInt64, text: String, correctionOf: Dot? = nil) {
        self.kind = kind
        self.occurredAt = occurredAt
        self.text = text
        self.correction = Self.stored(correctionOf)
    }

    private enum CodingKeys: String, CodingKey { case kind, occurredAt, text, correctionOf }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        kind = try container.decode(String.self, forKey: .kind)
        occurredAt = try container.decode(UInt64.self, forKey: .occurredAt)
        text = try container.decode(String.self, forKey: .text)
        let corrected = try container.decodeIfPresent(Dot.self, forKey: .correctionOf)
        if let corrected, corrected.counter == 0 {
            throw DecodingError.dataCorruptedError(forKey: .correctionOf, in: container,
                                                   debugDescription: "a corrected entry's counter starts at 1")
        }
        correction = corrected ?? Self.noCorrection
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kind, forKey: .kind)
        try container.encode(occurredAt, forKey: .occurredAt)
        try container.encode(text, forKey: .text)
        try container.encodeIfPresent(correctionOf, forKey: .correctionOf)
    }
}

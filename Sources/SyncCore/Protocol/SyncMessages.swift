/// The messages of one sync round trip (DESIGN §5): `POST /v1/sync` carries a
/// `SyncRequest` and returns a `SyncResponse`, in binary or JSON.

/// The protocol version this build speaks. Version 2 made household
/// references self-describing and gave rejections their epoch; a version-1
/// message would decode into the wrong households, so it is refused.
/// Version 3 lets a write absorb the drafts it superseded, leaves a device's
/// own accepted writes out of its snapshots and checks state with one digest
/// per response: a version-2 device would lose its own values from its copy,
/// so it is refused too (docs/decisions.md, 31).
public let syncProtocolVersion = 3

/// The oldest protocol version this build reads.
public let oldestSyncProtocolVersion = 3

/// A segment the device holds, at the epoch it holds it.
public struct HeldSegment: Hashable, Sendable, Codable, Comparable {
    public var segment: SegmentKey
    public var epoch: UInt32
    public init(segment: SegmentKey, epoch: UInt32) {
        self.segment = segment
        self.epoch = epoch
    }
    public static func < (lhs: HeldSegment, rhs: HeldSegment) -> Bool {
        lhs.segment != rhs.segment ? lhs.segment < rhs.segment : lhs.epoch < rhs.epoch
    }
}

/// What the device holds: always a digest; the full list when the server asked
/// for it (or when the device has just changed what it holds).
public struct HeldSet: Hashable, Sendable, Codable {
    public var digest: Digest
    public var segments: [HeldSegment]?

    public init(segments: [HeldSegment], includeList: Bool) {
        digest = HeldSet.digest(of: segments)
        self.segments = includeList ? segments.sorted() : nil
    }

    public init(digest: Digest, segments: [HeldSegment]?) {
        self.digest = digest
        self.segments = segments
    }

    /// A 16-byte digest of the list, independent of its order: equal sets, equal digests.
    public static func digest(of segments: [HeldSegment]) -> Digest {
        var sum = ContentHash128.zero
        for held in segments {
            var h = ElementHasher()
            h.add(held.segment.household.high)
            h.add(held.segment.household.low)
            h.add(held.segment.purpose.rawValue)
            h.add(UInt64(held.epoch))
            sum = sum + h.result
        }
        return Digest(sum.bytes)
    }
}

/// Where a device is in the server's change sequence. While a long pull is
/// paged, `resumeAfter` names the last segment whose delta was sent and
/// `resumeSeq` the sequence the first page was read at; the final page returns
/// `resumeSeq` as the new `seq`, so nothing that changed meanwhile is skipped.
public struct SyncCursor: Hashable, Sendable, Codable {
    public var seq: UInt64
    public var resumeAfter: SegmentKey?
    public var resumeSeq: UInt64?
    public init(seq: UInt64 = 0, resumeAfter: SegmentKey? = nil, resumeSeq: UInt64? = nil) {
        self.seq = seq
        self.resumeAfter = resumeAfter
        self.resumeSeq = resumeSeq
    }
    public static let start = SyncCursor()
}

/// A local read of household data made on the device (offline audit, DESIGN §7).
public struct AuditEvent: Hashable, Sendable, Codable {
    /// Dense per device, starting at 1: the server finds gaps with it.
    public var deviceSeq: UInt64
    /// First 16 bytes of the SHA-256 of the previous event's encoding (chain).
    public var prevHash: Digest
    public var household: HouseholdID
    public var purpose: Purpose?
    /// "show", "export", "logList", "goalList" or "rejectedList".
    public var action: String
    public var at: UInt64
    /// How many fields or entries were shown.
    public var count: Int

    public init(deviceSeq: UInt64, prevHash: Digest, household: HouseholdID, purpose: Purpose?, action: String,
                at: UInt64, count: Int) {
        self.deviceSeq = deviceSeq
        self.prevHash = prevHash
        self.household = household
        self.purpose = purpose
        self.action = action
        self.at = at
        self.count = count
    }

    /// The chain hash of this event, to put in the next event's `prevHash`.
    public var chainHash: Digest {
        var writer = BinaryWriter()
        writer.varint(deviceSeq)
        writer.raw(prevHash.bytes)
        writer.household(household)
        writer.string(purpose?.rawValue ?? "")
        writer.string(action)
        writer.varint(at)
        // Clamped: a device never counts below 0, but the server hashes what a JSON body claims too.
        writer.varint(UInt64(clamping: count))
        return Digest(Array(SHA256Digest.hash(writer.bytes).prefix(16)))
    }
}

public struct SyncRequest: Hashable, Sendable, Codable {
    public var version: Int
    public var cursor: SyncCursor
    /// The hash of the schema the device has ("" for none): the server sends
    /// its schema when they differ.
    public var schemaHash: String
    public var held: HeldSet
    /// The device's pending ops, in the order they were made.
    public var ops: [SyncOperation]
    public var auditEvents: [AuditEvent]
    /// Soft limit on the response body in bytes; every page carries at least one item.
    public var limit: Int
    /// The digest of the policy context the device has: the server sends the
    /// context again only when it changed.
    public var policyDigest: Digest?

    public init(version: Int = syncProtocolVersion, cursor: SyncCursor, schemaHash: String, held: HeldSet,
                ops: [SyncOperation] = [], auditEvents: [AuditEvent] = [], limit: Int = 4 << 20, policyDigest: Digest? = nil) {
        self.version = version
        self.cursor = cursor
        self.schemaHash = schemaHash
        self.held = held
        self.ops = ops
        self.auditEvents = auditEvents
        self.limit = limit
        self.policyDigest = policyDigest
    }
}

/// A contiguous run of one replica's dots in one segment that the server accepted.
public struct AcceptedRange: Hashable, Sendable, Codable {
    public var segment: SegmentKey
    public var replica: ReplicaID
    public var first: UInt64
    public var last: UInt64
    public init(segment: SegmentKey, replica: ReplicaID, first: UInt64, last: UInt64) {
        self.segment = segment
        self.replica = replica
        self.first = first
        self.last = last
    }

    public func contains(_ dot: Dot) -> Bool { dot.replica == replica && dot.counter >= first && dot.counter <= last }

    /// Groups accepted dots into ranges: segments in order of first
    /// appearance, dots sorted within each (absorbed dots come after the write
    /// that absorbed them, see PushProcessor).
    public static func ranges(of accepted: [(SegmentKey, Dot)]) -> [AcceptedRange] {
        // Each dot with its segment's place in the order of first appearance, sorted once: no list
        // of dots per segment. Accepted dots come in runs of one segment (a push handles a request's
        // ops segment by segment), so a segment's key is looked up once per run, not once per dot.
        var segments: [SegmentKey] = []
        var place: [SegmentKey: Int] = [:]
        var keyed: [(place: Int, dot: Dot)] = []
        keyed.reserveCapacity(accepted.count)
        var current: (segment: SegmentKey, place: Int)?
        for (segment, dot) in accepted {
            if current?.segment != segment {
                if let known = place[segment] {
                    current = (segment, known)
                } else {
                    current = (segment, segments.count)
                    place[segment] = segments.count
                    segments.append(segment)
                }
            }
            keyed.append((current!.place, dot))
        }
        // Already in order unless the push absorbed drafts (they follow the write that absorbed them).
        let before = { (a: (place: Int, dot: Dot), b: (place: Int, dot: Dot)) in a.place != b.place ? a.place < b.place : a.dot < b.dot }
        if zip(keyed, keyed.dropFirst()).contains(where: { before($1, $0) }) { keyed.sort(by: before) }
        var result: [AcceptedRange] = []
        var lastPlace = -1
        for (place, dot) in keyed {
            if place == lastPlace, let last = result.last, last.replica == dot.replica, last.last + 1 == dot.counter {
                result[result.count - 1].last = dot.counter
            } else {
                result.append(AcceptedRange(segment: segments[place], replica: dot.replica, first: dot.counter, last: dot.counter))
            }
            lastPlace = place
        }
        return result
    }
}

public struct RejectedOp: Hashable, Sendable, Codable {
    public var segment: SegmentKey
    /// The epoch the op was written for: after an erasure one segment can
    /// hold the same dot in two epochs, and only one of them is refused.
    public var epoch: UInt32
    public var dot: Dot
    public var reason: RefusalReason
    public init(segment: SegmentKey, epoch: UInt32, dot: Dot, reason: RefusalReason) {
        self.segment = segment
        self.epoch = epoch
        self.dot = dot
        self.reason = reason
    }
}

/// Elements of one segment plus the causal context they cover: a delta (join
/// into what the device has) or a snapshot (replace it).
public struct SegmentPatch: Hashable, Sendable, Codable {
    public var segment: SegmentKey
    public var epoch: UInt32
    public var context: CausalContext
    public var elements: [SegmentElement]
    public init(segment: SegmentKey, epoch: UInt32, context: CausalContext, elements: [SegmentElement]) {
        self.segment = segment
        self.epoch = epoch
        self.context = context
        self.elements = elements
    }

    /// A snapshot of a whole state.
    public init(snapshotOf state: SegmentState) {
        self.init(segment: state.key, epoch: state.epoch, context: state.context, elements: state.elements)
    }
}

public struct PurgeInstruction: Hashable, Sendable, Codable {
    public var segment: SegmentKey
    public var epoch: UInt32
    /// "erased" (the server deleted it) or "notReadable" (access ended).
    public var reason: String
    public init(segment: SegmentKey, epoch: UInt32, reason: String) {
        self.segment = segment
        self.epoch = epoch
        self.reason = reason
    }
    public static let erased = "erased"
    public static let notReadable = "notReadable"
}

public struct SegmentHash: Hashable, Sendable, Codable {
    public var segment: SegmentKey
    public var epoch: UInt32
    /// The segment's 8-byte state hash read little-endian (`SegmentState.stateHashWord`),
    /// the way StateCheck sums it: a word, not a byte array allocated per segment per pull.
    public var word: UInt64
    public init(segment: SegmentKey, epoch: UInt32, word: UInt64) {
        self.segment = segment
        self.epoch = epoch
        self.word = word
    }
}

/// A check that the device's copies equal the server's after a response: the
/// wrapping sum of the 8-byte state hashes of every segment the response sent
/// a delta or snapshot of, plus `alsoCovers` (segments the device pushed into).
/// Eight bytes per response rather than a hash per segment; a mismatch, which
/// only a bug or a damaged store can cause, makes the device fetch all of them again.
public struct StateCheck: Hashable, Sendable, Codable {
    public var alsoCovers: [HeldSegment]
    public var digest: Digest

    public init(alsoCovers: [HeldSegment], digest: Digest) {
        self.alsoCovers = alsoCovers
        self.digest = digest
    }

    /// The check over `hashes` for a response carrying `patches`.
    public init(hashes: [SegmentHash], patches: [SegmentPatch]) {
        self.init(hashes: hashes, deltas: patches, snapshots: [])
    }

    /// The same for a response's deltas and snapshots, without joining the two lists.
    public init(hashes: [SegmentHash], deltas: [SegmentPatch], snapshots: [SegmentPatch]) {
        var sent = Set<SegmentKey>(minimumCapacity: deltas.count + snapshots.count)
        for patch in deltas { sent.insert(patch.segment) }
        for patch in snapshots { sent.insert(patch.segment) }
        alsoCovers = hashes.filter { !sent.contains($0.segment) }.map { HeldSegment(segment: $0.segment, epoch: $0.epoch) }
        digest = Self.sum(words: hashes.map(\.word))
    }

    /// The segments covered, given the response's patches (first occurrence wins).
    public func segments(patches: [SegmentPatch]) -> [HeldSegment] {
        segments(deltas: patches, snapshots: [])
    }

    /// The same for a response's deltas and snapshots, without joining the two lists.
    public func segments(deltas: [SegmentPatch], snapshots: [SegmentPatch]) -> [HeldSegment] {
        var seen = Set<SegmentKey>(minimumCapacity: deltas.count + snapshots.count + alsoCovers.count)
        var result: [HeldSegment] = []
        result.reserveCapacity(deltas.count + snapshots.count + alsoCovers.count)
        for patch in deltas where seen.insert(patch.segment).inserted { result.append(HeldSegment(segment: patch.segment, epoch: patch.epoch)) }
        for patch in snapshots where seen.insert(patch.segment).inserted { result.append(HeldSegment(segment: patch.segment, epoch: patch.epoch)) }
        for held in alsoCovers where seen.insert(held.segment).inserted { result.append(held) }
        return result
    }

    /// Order-independent combination of state hashes (little-endian, wrapping).
    public static func sum(_ hashes: [[UInt8]]) -> Digest {
        sum(words: hashes.map { hash in
            var value: UInt64 = 0
            for (index, byte) in hash.prefix(8).enumerated() { value |= UInt64(byte) << (8 * UInt64(index)) }
            return value
        })
    }

    /// The same over hashes already read as little-endian words (`SegmentState.stateHashWord`).
    public static func sum(words: [UInt64]) -> Digest {
        var total: UInt64 = 0
        for word in words { total &+= word }
        return Digest((0..<8).map { UInt8(truncatingIfNeeded: total >> (8 * UInt64($0))) })
    }
}

public struct SyncResponse: Hashable, Sendable, Codable {
    public var version: Int
    public var accepted: [AcceptedRange]
    public var rejected: [RejectedOp]
    public var deltas: [SegmentPatch]
    public var snapshots: [SegmentPatch]
    public var purge: [PurgeInstruction]
    /// The user's policy context; nil when it equals the one the device has
    /// (its digest was in the request), so the device keeps its own.
    public var policy: PolicyContext?
    /// Sent when the device's schema hash differs from the server's.
    public var schema: Schema?
    public var cursor: SyncCursor
    /// Call again: more pages are waiting.
    public var more: Bool
    /// The held digest did not match: send the full list next time.
    public var needHeld: Bool
    /// Checks the device's copies of the segments this response touched.
    public var stateCheck: StateCheck?
    /// The highest device audit sequence the server has stored contiguously.
    public var auditAck: UInt64
    public var serverTime: UInt64
    /// The largest request body the server accepts, for chunking pushes.
    public var maxBody: Int
    /// Current epochs above 0 of segments of the user's households, so a device
    /// that never held an erased segment writes new work for the right epoch.
    public var epochs: [HeldSegment] = []

    public init(version: Int = syncProtocolVersion, accepted: [AcceptedRange] = [], rejected: [RejectedOp] = [],
                deltas: [SegmentPatch] = [], snapshots: [SegmentPatch] = [], purge: [PurgeInstruction] = [],
                policy: PolicyContext?, schema: Schema? = nil, cursor: SyncCursor, more: Bool = false,
                needHeld: Bool = false, stateCheck: StateCheck? = nil, auditAck: UInt64 = 0,
                serverTime: UInt64, maxBody: Int, epochs: [HeldSegment] = []) {
        self.version = version
        self.accepted = accepted
        self.rejected = rejected
        self.deltas = deltas
        self.snapshots = snapshots
        self.purge = purge
        self.policy = policy
        self.schema = schema
        self.cursor = cursor
        self.more = more
        self.needHeld = needHeld
        self.stateCheck = stateCheck
        self.auditAck = auditAck
        self.serverTime = serverTime
        self.maxBody = maxBody
        self.epochs = epochs
    }
}

/// When an element last changed and by whom, so that a pull can send a
/// device only what others changed: the device already has its own writes.
public struct ElementMeta: Hashable, Sendable, Codable {
    /// Sequence of the latest change.
    public var seq: UInt64
    /// Replica that made the latest change.
    public var writer: ReplicaID
    /// Sequence of the latest change by a replica other than `writer`.
    public var otherSeq: UInt64
    /// The element's content hash as it stands (ServerSegment keeps it, so a
    /// merge subtracts the old hash from the segment digest without hashing
    /// the old content again). Zero in a context's meta.
    public var contentHash: ContentHash128

    public init(seq: UInt64, writer: ReplicaID, otherSeq: UInt64 = 0, contentHash: ContentHash128 = .zero) {
        self.seq = seq
        self.writer = writer
        self.otherSeq = otherSeq
        self.contentHash = contentHash
    }

    public mutating func record(seq newSeq: UInt64, writer newWriter: ReplicaID) {
        if newWriter != writer {
            otherSeq = seq
            writer = newWriter
        }
        seq = newSeq
    }

    /// The latest change this replica has not made itself.
    @inline(__always)
    public func effectiveSeq(for replica: ReplicaID) -> UInt64 { writer == replica ? otherSeq : seq }
}

/// The server's copy of a segment: the state plus per-element change
/// metadata. Used by the SQLite server and by the in-process benchmark server.
public struct ServerSegment: Sendable {
    public var state: SegmentState
    public var meta: SortedMap<ElementKey, ElementMeta>
    /// Changes to the context alone (a rejected dot, an already-superseded write).
    public var contextMeta: ElementMeta
    /// The sequence of the first op merged into the segment (0: not yet).
    public var createdSeq: UInt64 = 0

    public init(key: SegmentKey, epoch: UInt32) {
        state = SegmentState(key: key, epoch: epoch)
        meta = [:]
        contextMeta = ElementMeta(seq: 0, writer: ReplicaID(0))
    }

    /// A segment from its state and per-element meta (each element's content
    /// hash is worked out here, whatever `meta` says).
    public init(state: SegmentState, meta: SortedMap<ElementKey, ElementMeta>, contextMeta: ElementMeta) {
        self.state = state
        var hashed = meta
        for key in meta.keys { hashed.update(key) { $0.contentHash = state.elementHash(key) ?? .zero } }
        self.meta = hashed
        self.contextMeta = contextMeta
    }

    /// Merges an accepted op at sequence `seq`. Returns the element it changed.
    @discardableResult
    public mutating func accept(_ op: SyncOperation, seq: UInt64) -> ElementKey? {
        // The element's hash before the merge comes from its meta: no second hashing of the old content.
        // One search finds the meta for the read and for the write after the merge.
        let key = SegmentState.elementKey(of: op)
        let slot = meta.slot(of: key)
        let before = slot.found ? meta.value(at: slot.index).contentHash : nil
        let (outcome, after) = state.apply(op, elementHashBefore: before)
        guard case .applied(let element) = outcome else { return nil }
        if createdSeq == 0 { createdSeq = seq }
        contextMeta.record(seq: seq, writer: op.dot.replica)
        if let element {
            // An op changes only the element it names (SegmentState.elementKey), so the slot found above is its.
            assert(element == key, "an op changed an element other than its own")
            let writer = op.dot.replica
            var info = slot.found ? meta.value(at: slot.index) : ElementMeta(seq: seq, writer: writer)
            if slot.found { info.record(seq: seq, writer: writer) }
            info.contentHash = after ?? .zero
            meta.setValue(info, for: key, at: slot)
        }
        return element
    }

    /// Records a rejected dot as seen and empty.
    public mutating func reject(_ dot: Dot, seq: UInt64) {
        guard !state.context.contains(dot) else { return }
        state.markSeen(dot)
        contextMeta.record(seq: seq, writer: dot.replica)
    }

    /// The latest sequence of any change (every change also changes the context).
    public var lastSeq: UInt64 { contextMeta.seq }

    /// What `replica` lacks of this segment since `cursor`: every element
    /// another replica changed after it, without the replica's own values
    /// (never echo a device's own ops), plus the context. Nil when nothing.
    public func delta(for replica: ReplicaID, since cursor: UInt64) -> SegmentPatch? {
        var elements: [SegmentElement] = []
        // Counted first: growing the list as it fills reallocated it several times for a busy segment.
        elements.reserveCapacity(meta.values.count { $0.effectiveSeq(for: replica) > cursor })
        for (key, info) in meta where info.effectiveSeq(for: replica) > cursor {
            guard let element = state.element(key) else { continue }
            elements.append(Self.strip(element, of: replica))
        }
        guard !elements.isEmpty || contextMeta.effectiveSeq(for: replica) > cursor else { return nil }
        return SegmentPatch(segment: state.key, epoch: state.epoch, context: state.context, elements: elements)
    }

    /// An element as sent to `replica`: without the replica's own field values.
    /// (`consuming`: an element with none is handed back, not copied.)
    public static func strip(_ element: consuming SegmentElement, of replica: ReplicaID) -> SegmentElement {
        guard case .field(let name, let register) = element,
              register.values.contains(where: { $0.dot.replica == replica }) else { return element }
        return .field(name: name, register: MultiValueRegister(covered: register.covered,
                                                               values: register.values.filter { $0.dot.replica != replica }))
    }

    /// An element of a snapshot for a device that is about to apply `ops` (its
    /// own, accepted in the same round trip) on top of it: without what those
    /// ops put there, which the device rebuilds itself. Nil when nothing else
    /// is left. A snapshot must never echo the device's own text any more than
    /// a delta does.
    public static func leavingOut(_ own: Set<Dot>, from element: SegmentElement) -> SegmentElement? {
        switch element {
        case .creation(let record):
            return own.contains(record.dot) ? nil : element
        case .logEntry(_, let entry):
            return own.contains(entry.dot) ? nil : element
        case .field(let name, let register):
            guard register.values.contains(where: { own.contains($0.dot) }) else { return element }
            // The cover stays: it may hold other replicas' overwritten writes.
            return .field(name: name, register: MultiValueRegister(covered: register.covered,
                                                                   values: register.values.filter { !own.contains($0.dot) }))
        case .item(let collection, let item):
            // An item made only by these ops is rebuilt whole by them; otherwise
            // only their values are left out.
            let values = item.text.values.map(\.dot) + item.status.values.map(\.dot) + item.position.values.map(\.dot)
            guard own.contains(item.id) || values.contains(where: own.contains) else { return element }
            if own.contains(item.id), item.writes.allSatisfy(own.contains), item.removes.isEmpty, item.removeCover.isEmpty,
               values.allSatisfy(own.contains) {
                return nil
            }
            return .item(collection: collection, item: item.leavingOut(own))
        }
    }

    /// Rebuilds a server segment from stored element rows.
    ///
    /// - Parameter digest: the stored sum of element hashes. With it, `rows`
    ///   may be only some of the elements (the ones a push touches): merges keep
    ///   the digest right element by element, and no hash is recomputed here.
    public static func restore(key: SegmentKey, epoch: UInt32, context: CausalContext, contextMeta: ElementMeta,
                               createdSeq: UInt64 = 0, digest: ContentHash128? = nil,
                               rows: [(SegmentElement, ElementMeta)]) -> ServerSegment {
        var state = SegmentState(key: key, epoch: epoch)
        state.context = context
        if digest != nil { state.tracksDigest = false }
        for (element, _) in rows { state.join(element) }
        let meta = SortedMap(rows.lazy.map { ($0.0.key, $0.1) })
        if let digest {
            state.elementDigest = digest
            state.tracksDigest = true
        }
        var segment = ServerSegment(state: state, meta: meta, contextMeta: contextMeta)  // hashes each loaded element
        segment.createdSeq = createdSeq
        return segment
    }
}

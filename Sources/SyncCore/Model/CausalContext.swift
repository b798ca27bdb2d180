/// What a segment state has seen: a version vector plus the few dots that
/// arrived out of order. A dot that was rejected or compacted away stays in
/// the context (seen and empty), so it can never come back (DESIGN §3).
public struct CausalContext: Hashable, Sendable, Codable, CustomStringConvertible {
    public private(set) var vector: VersionVector
    /// Dots above the vector's contiguous prefix, sorted.
    public private(set) var cloud: [Dot]

    public init(vector: VersionVector = VersionVector(), cloud: [Dot] = []) {
        self.vector = vector
        self.cloud = []
        for dot in cloud { insert(dot) }
    }

    public static let empty = CausalContext()

    public var isEmpty: Bool { vector.isEmpty && cloud.isEmpty }

    public func contains(_ dot: Dot) -> Bool {
        vector.contains(dot) || (!cloud.isEmpty && cloud.contains(dot))
    }

    /// The highest counter of `replica` seen here (0: none).
    public func highestCounter(of replica: ReplicaID) -> UInt64 {
        cloud.reduce(vector[replica]) { $1.replica == replica ? max($0, $1.counter) : $0 }
    }

    /// Records a dot as seen, folding the cloud into the vector where it closes a gap.
    public mutating func insert(_ dot: Dot) {
        // One scan of the vector decides and raises (every merged op comes here). The cloud never
        // holds the dot after the vector's top: it would have been folded in.
        switch vector.advance(to: dot) {
        case .seen:
            return
        case .raised:
            if !cloud.isEmpty { compact() }
        case .beyondNext:
            guard !cloud.contains(dot) else { return }
            let index = cloud.firstIndex(where: { $0 > dot }) ?? cloud.count
            cloud.insertMoving(dot, at: index)
        }
    }


    public mutating func join(_ other: CausalContext) {
        join(other, leavingOut: nil)
    }

    /// The join of `other` less every dot of `replica` (nil: none), without
    /// building that context first (a device joins each delta's context less
    /// its own dots).
    public mutating func join(_ other: CausalContext, leavingOut replica: ReplicaID?) {
        if let replica { vector.join(other.vector, leavingOut: replica) } else { vector.join(other.vector) }
        for dot in other.cloud where dot.replica != replica && !vector.contains(dot) && !cloud.contains(dot) {
            let index = cloud.firstIndex(where: { $0 > dot }) ?? cloud.count
            cloud.insertMoving(dot, at: index)
        }
        compact()
    }

    public mutating func join(_ other: VersionVector) {
        vector.join(other)
        if !cloud.isEmpty { compact() }
    }

    private mutating func compact() {
        var changed = true
        while changed {
            changed = false
            var kept: [Dot] = []
            for dot in cloud {
                let top = vector[dot.replica]
                if dot.counter <= top { changed = true; continue }
                if dot.counter == top + 1 { vector.raise(dot.replica, to: dot.counter); changed = true; continue }
                kept.append(dot)
            }
            cloud = kept
        }
    }

    public var description: String { cloud.isEmpty ? vector.description : "\(vector)+\(cloud)" }
}

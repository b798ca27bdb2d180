import Testing
@testable import SyncCore

struct VerdictListTests {
    /// The in-process server's verdicts, one run per (epoch, replica), answer
    /// as a dictionary of every verdict recorded would: out-of-order and
    /// repeated counters, replicas taking turns, several epochs.
    @Test func verdictRunsAgreeWithADictionary() {
        var random = SplitMix64(seed: 7)
        for _ in 0..<200 {
            var list = InMemorySyncServer.VerdictList()
            var model: [InMemorySyncServer.VerdictKey: ContentHash128] = [:]
            for _ in 0..<Int.random(in: 0...60, using: &random) {
                let dot = Dot(replica: ReplicaID(UInt32.random(in: 1...4, using: &random)), counter: UInt64.random(in: 1...20, using: &random))
                let key = InMemorySyncServer.VerdictKey(epoch: UInt32.random(in: 0...1, using: &random), dot: dot)
                let fingerprint = ContentHash128(high: random.next(), low: random.next())
                list.record(key, fingerprint)
                model[key] = fingerprint
            }
            for epoch: UInt32 in 0...2 {
                for replica: UInt32 in 0...5 {
                    for counter: UInt64 in 0...21 {
                        let key = InMemorySyncServer.VerdictKey(epoch: epoch, dot: Dot(replica: ReplicaID(replica), counter: counter))
                        #expect(list[key] == model[key])
                    }
                    let highest = model.keys.filter { $0.epoch == epoch && $0.replica == replica }.map(\.counter).max() ?? 0
                    #expect(list.highestCounter(of: ReplicaID(replica), epoch: epoch) == highest)
                }
            }
        }
    }

    /// The highest counter is the highest recorded, also at the counter's limit
    /// (a JSON op can carry one; the sorted list this replaced answered the one below it).
    @Test func theHighestCounterIsTheHighestRecorded() {
        var list = InMemorySyncServer.VerdictList()
        let replica = ReplicaID(3)
        for counter in [UInt64(5), .max, 7] {
            list.record(InMemorySyncServer.VerdictKey(epoch: 0, dot: Dot(replica: replica, counter: counter)), ContentHash128(high: counter, low: 1))
        }
        #expect(list.highestCounter(of: replica, epoch: 0) == .max)
        #expect(list.highestCounter(of: replica, epoch: 1) == 0)
        #expect(list[InMemorySyncServer.VerdictKey(epoch: 0, dot: Dot(replica: replica, counter: 7))] == ContentHash128(high: 7, low: 1))
    }
}

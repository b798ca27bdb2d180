import ArgumentParser
import Foundation
import SyncCore
import SyncServer

/// `fieldbench micro`: per-op costs of the pieces of a push, for profiling.
struct MicroCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "micro", abstract: "Per-op costs of push pieces (profiling aid).",
                                                    shouldDisplay: false)

    func run() async throws {
        let schema = Schema.defaultHouseholdPlan()
        let household = Replay.household(1)
        let policy = PolicyContext(user: "u", role: "wmo-consulent", rolePurposes: [.regie: .write, .wmo: .write],
                                   assignments: (0..<67).map { Assignment(household: Replay.household($0)) })
        var replica = ClientReplica(replica: ReplicaID(5), user: "u", schema: schema, policy: policy)
        let fields = ["wmo_request", "wmo_investigation", "usual_help_context", "wmo_indication", "carer_load"]
        let count = 100_000
        var t = Clock.now
        for i in 0..<count {
            try replica.set(household: household, field: fields[i % 5], value: "Waarde \(i) van het veld, een regel tekst van gemiddelde lengte.", wall: 1_700_000_000_000 + UInt64(i))
        }
        print("edit (ClientReplica.set):", String(format: "%.2f", t.lap() / Double(count) * 1e6), "µs/op")
        let ops = replica.pending
        for op in ops { _ = PushProcessor.fingerprint(op) }
        print("fingerprint:", String(format: "%.2f", t.lap() / Double(count) * 1e6), "µs/op")
        let validator = OperationValidator(schema: schema)
        var state = SegmentState(key: ops[0].segment, epoch: 0)
        for op in ops {
            _ = validator.validate(op, replica: ReplicaID(5), user: "u", policy: policy, now: 1_700_000_000_000,
                                   target: .init(epoch: 0, state: state, householdExists: true))
        }
        print("validate:", String(format: "%.2f", t.lap() / Double(count) * 1e6), "µs/op")
        for op in ops { state.apply(op) }
        print("SegmentState.apply:", String(format: "%.2f", t.lap() / Double(count) * 1e6), "µs/op")
        var segment = ServerSegment(key: ops[0].segment, epoch: 0)
        for (i, op) in ops.enumerated() { segment.accept(op, seq: UInt64(i + 1)) }
        print("ServerSegment.accept:", String(format: "%.2f", t.lap() / Double(count) * 1e6), "µs/op")
        var server = InMemorySyncServer(schema: schema)
        server.policies["u"] = policy
        server.addHousehold(household)
        let device = DeviceIdentity(replica: ReplicaID(5), user: "u", deviceID: "d")
        var index = 0
        while index < ops.count {
            let chunk = Array(ops[index..<min(ops.count, index + 300)])
            var request = SyncRequest(cursor: .start, schemaHash: "", held: HeldSet(segments: [], includeList: true), ops: chunk)
            _ = try server.push(&request, device: device, now: 1_700_000_000_000)
            index += 300
        }
        print("InMemorySyncServer.push (300-op batches):", String(format: "%.2f", t.lap() / Double(count) * 1e6), "µs/op")

        // A sync response's size: contact notes and field values.
        let body = [UInt8]((0..<60).map { "Veld \($0): afspraak over de planning van het keukentafelgesprek. " }.joined().utf8)
        let bodies = 5_000
        var zipped: [UInt8] = []
        for _ in 0..<bodies { zipped = Gzip.compress(body) }
        print("Gzip.compress (\(body.count) B):", String(format: "%.2f", t.lap() / Double(bodies) * 1e6), "µs/body")
        for _ in 0..<bodies { _ = try Gzip.decompress(zipped, limit: 1 << 20) }
        print("Gzip.decompress (\(zipped.count) B):", String(format: "%.2f", t.lap() / Double(bodies) * 1e6), "µs/body")
    }
}

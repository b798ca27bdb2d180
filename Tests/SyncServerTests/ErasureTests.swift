import Foundation
import GRDB
import Testing
import SyncCore
import SyncServer

/// Point 4 (erase) and DESIGN §6 erasure: the segment's data is deleted from
/// the store, its epoch raised, old-epoch ops fail `erased`, new work can
/// start, and devices that hold it purge it at their next sync.
@Suite("Erasure")
struct ErasureTests {
    @Test("erase H --purpose WMO: devices still holding it are listed, they purge at the next sync, old-epoch ops are 'erased', new work starts at the new epoch")
    func eraseSegmentEndToEnd() async throws {
        try await withServer { server in
            var s = try await PlanScenario.make(server)
            let wmo = s.segment(.wmo)
            #expect(s.wendy.segment(s.household, .wmo) != nil)
            // Positive control: the planted WMO text is in the store before the erasure.
            #expect(StoreFile.bytesOnDisk(server.databaseURL).containsBytes(s.wmoSecret))

            // Wendy writes offline for the old epoch before she hears of the erasure.
            let stale = try s.wendy.replica.set(household: s.household, field: "wmo_indication", value: "Geschreven voor het wissen",
                                                wall: server.clock.now)
            #expect(stale.epoch == 0)

            let result = try await server.erase(s.household, purpose: .wmo)
            #expect(result.erased.map(\.purpose) == [.wmo])
            #expect(result.erased.first?.oldEpoch == 0)
            #expect(result.erased.first?.newEpoch == 1)
            let holding = try #require(result.devicesStillHolding.first { $0.device == s.wendy.id })
            #expect(holding.purposes == [.wmo])
            #expect(holding.user == "wendy")
            #expect(!result.devicesStillHolding.contains { $0.device == s.sam.id }, "Sam never held WMO")

            // The data is gone from the store file (secure_delete, WAL truncated), REGIE is untouched.
            let bytes = StoreFile.bytesOnDisk(server.databaseURL)
            #expect(!bytes.containsBytes(s.wmoSecret))
            #expect(!bytes.containsBytes(s.wmoLogText))
            #expect(bytes.containsBytes(s.regieLogText))
            let leftovers = try StoreFile.read(server.databaseURL) { db in
                [try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM segments WHERE household = ? AND purpose = 'WMO'", arguments: [Data(s.household.bytes)]) ?? -1,
                 try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM ops WHERE household = ? AND purpose = 'WMO'", arguments: [Data(s.household.bytes)]) ?? -1,
                 try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM quarantine WHERE household = ? AND purpose = 'WMO'", arguments: [Data(s.household.bytes)]) ?? -1]
            }
            #expect(leftovers == [0, 0, 0])

            // Wendy's next sync: the stale op is rejected 'erased', the segment is purged, nothing of it is kept.
            let rounds = try await s.wendy.sync(server)
            let rejected = rounds.flatMap(\.response.rejected)
            #expect(rejected.contains { $0.dot == stale.dot && $0.reason == .erased })
            #expect(rounds.flatMap(\.response.purge).contains { $0.segment == wmo && $0.reason == PurgeInstruction.erased && $0.epoch == 0 })
            #expect(s.wendy.segment(s.household, .wmo) == nil)
            #expect(!s.wendy.replica.rejected.contains { $0.op.segment == wmo }, "ops of an erased segment are not kept on the device")
            #expect(try StoreFile.count(server.databaseURL, "SELECT COUNT(*) FROM quarantine WHERE purpose = 'WMO'") == 0,
                    "nor in the server's quarantine")
            #expect(s.wendy.segment(s.household, .regie)?.value(of: "label") == s.label)

            // A re-push of the stale op (as if the response had been lost) is still 'erased'.
            var replay = s.wendy.replica.makeRequest()
            replay.ops = [stale]
            let (_, replayed) = try await postSync(server.http, token: s.wendy.token, request: replay, encoding: .binary)
            #expect(replayed?.rejection(of: stale) == .erased)

            // New work under WMO starts again, at epoch 1.
            let fresh = try s.wendy.replica.set(household: s.household, field: "wmo_request", value: "Nieuwe aanvraag na wissen", wall: server.clock.now)
            #expect(fresh.epoch == 1)
            let newRounds = try await s.wendy.sync(server)
            #expect(newRounds.contains { $0.response.acceptedContains(fresh) })
            var wendy2 = try await server.device("wendy", initialSync: false)
            try await wendy2.sync(server)
            let segment = try #require(wendy2.segment(s.household, .wmo))
            #expect(segment.epoch == 1)
            #expect(segment.value(of: "wmo_request") == "Nieuwe aanvraag na wissen")
            #expect(wendy2.logTexts(s.household, .wmo).isEmpty, "the erased log entry does not come back")

            let audit = try await server.audit(household: s.household)
            #expect(audit.contains { $0.action == "erase" && $0.actor == "admin" && $0.purpose == "WMO" && $0.detail == "epoch 0->1" })
        }
    }

    @Test("erase H without a purpose erases every segment; unknown households and purposes are 404")
    func eraseWholeHousehold() async throws {
        try await withServer { server in
            let s = try await PlanScenario.make(server)
            #expect(try await server.admin("POST", "erase", AdminAPI.Erase(household: HouseholdID(UUID()), purpose: nil)).status == 404)
            #expect(try await server.admin("POST", "erase", AdminAPI.Erase(household: s.household, purpose: .veil)).status == 404)
            let result = try await server.erase(s.household)
            #expect(Set(result.erased.map(\.purpose)) == [.regie, .wmo])
            #expect(Set(result.devicesStillHolding.map(\.device)) == [s.wendy.id, s.sam.id])
            #expect(result.devicesStillHolding.first { $0.device == s.sam.id }?.purposes == [.regie])

            var wendy = s.wendy
            var sam = s.sam
            try await wendy.sync(server)
            try await sam.sync(server)
            for device in [wendy, sam] {
                #expect(device.replica.confirmed.keys.allSatisfy { $0.household != s.household }, "\(device.user) purged the household")
            }
            let bytes = StoreFile.bytesOnDisk(server.databaseURL)
            for text in [s.wmoSecret, s.wmoLogText, s.regieLogText, s.label] {
                #expect(!bytes.containsBytes(text))
            }
            // Erasing again erases nothing and is the follow-up: once every device purged, none is listed.
            let again = try await server.admin("POST", "erase", AdminAPI.Erase(household: s.household, purpose: .wmo))
            #expect(again.status == 200)
            let followUp = try again.decode(AdminAPI.EraseResult.self)
            #expect(followUp.erased.isEmpty && followUp.erasedBefore.map(\.purpose) == [.wmo] && followUp.devicesStillHolding.isEmpty)
        }
    }

    @Test("erase H --purpose P also erases quarantined ops of a purpose that has no segment, and erase H those of every purpose")
    func eraseTakesQuarantinedOpsWithoutASegment() async throws {
        try await withServer { server in
            var s = try await PlanScenario.make(server)
            let secret = "Schuld bij de Testbank, nooit geland (fictief)"
            var request = s.wendy.replica.makeRequest()
            request.ops = [s.wgsOpByWendy(counter: 1, value: secret)]
            let round = try await s.wendy.roundTrip(server.http, wall: server.clock.now, request: request)
            #expect(round.response.rejected.map(\.reason) == [.purposeNotGranted])
            let household = [Data(s.household.bytes)] as StatementArguments
            // Positive controls: no WGS segment exists, the refused text sits in the quarantine and the file.
            #expect(try StoreFile.count(server.databaseURL, "SELECT COUNT(*) FROM segments WHERE household = ? AND purpose = 'WGS'", household) == 0)
            #expect(try StoreFile.count(server.databaseURL, "SELECT COUNT(*) FROM quarantine WHERE household = ? AND purpose = 'WGS'", household) == 1)
            #expect(StoreFile.bytesOnDisk(server.databaseURL).containsBytes(secret))

            let result = try await server.erase(s.household, purpose: .wgs)
            #expect(result.erased.isEmpty)
            #expect(result.quarantinedErased == 1)
            #expect(try StoreFile.count(server.databaseURL, "SELECT COUNT(*) FROM quarantine WHERE household = ?", household) == 0)
            #expect(!StoreFile.bytesOnDisk(server.databaseURL).containsBytes(secret))
            let audit = try await server.audit(household: s.household)
            #expect(audit.contains { $0.action == "eraseQuarantine" && $0.purpose == "WGS" && $0.count == 1 })
            #expect(!audit.contains { $0.detail.contains(secret) })

            // Nothing of WGS is left: asked again, the server says so.
            #expect(try await server.admin("POST", "erase", AdminAPI.Erase(household: s.household, purpose: .wgs)).status == 404)

            // A whole-household erase takes quarantined ops of any purpose along with its segments.
            let second = "Nog een geweigerde notitie (fictief)"
            request = s.wendy.replica.makeRequest()
            request.ops = [s.wgsOpByWendy(counter: 2, value: second)]
            _ = try await s.wendy.roundTrip(server.http, wall: server.clock.now, request: request)
            let whole = try await server.erase(s.household)
            #expect(whole.quarantinedErased == 1)
            #expect(!whole.erased.isEmpty)
            #expect(!StoreFile.bytesOnDisk(server.databaseURL).containsBytes(second))
        }
    }
}

import Foundation
import Testing
import SyncCore
import SyncServer

/// The common story of several tests (fictional people and places):
/// Wendy (wmo-consulent) creates household H on her laptop, writes the
/// shared plan (REGIE) and WMO data, and pushes. An admin assigns Sam
/// (schuldhulp) to H; Sam's laptop syncs.
struct PlanScenario {
    let server: TestServer
    var wendy: TestDevice
    var sam: TestDevice
    let household: HouseholdID
    let label = "Fam. Testhuis (Proefdorp)"
    /// Planted personal text in a WMO field: only WMO readers may ever see it.
    let wmoSecret = "Mevrouw Proefpersoon heeft hulp nodig bij het douchen"
    /// Planted personal text in a WMO contact log entry.
    let wmoLogText = "Huisbezoek: dochter Fictiefje regelt de boodschappen"
    /// A REGIE contact log entry: every assigned worker may see it.
    let regieLogText = "Telefoon met bewoner over de planning van het keukentafelgesprek"
    /// The ops Wendy pushed first, all acknowledged.
    var firstOps: [SyncOperation] = []
    /// Wendy's first sync rounds.
    var wendyFirstRounds: [SyncRound] = []

    static func make(_ server: TestServer, encoding: WireEncoding = .binary) async throws -> PlanScenario {
        let wendy = try await server.device("wendy", role: "wmo-consulent", encoding: encoding)
        let sam = try await server.device("sam", role: "schuldhulp", encoding: encoding)
        var scenario = PlanScenario(server: server, wendy: wendy, sam: sam, household: HouseholdID(UUID()))
        try await scenario.wendyCreatesHousehold()
        try await server.assign("sam", scenario.household)
        try await scenario.sam.sync(server)
        return scenario
    }

    private mutating func wendyCreatesHousehold() async throws {
        let wall = server.clock.now
        let h = household
        _ = try wendy.replica.createHousehold(id: h, label: label, wall: wall)
        try wendy.replica.set(household: h, field: "area", value: "Proefdorp-Noord", wall: wall)
        try wendy.replica.set(household: h, field: "wmo_request", value: wmoSecret, wall: wall)
        try wendy.replica.appendLog(household: h, purpose: .wmo, kind: "huisbezoek", occurredAt: wall - hour, text: wmoLogText, wall: wall)
        try wendy.replica.appendLog(household: h, purpose: .regie, kind: "telefoon", occurredAt: nil, text: regieLogText, wall: wall)
        firstOps = wendy.replica.pending
        wendyFirstRounds = try await wendy.sync(server)
    }

    func segment(_ purpose: Purpose) -> SegmentKey { SegmentKey(household: household, purpose: purpose) }

    /// A hand-made op by Wendy's replica for a purpose her role lacks (WGS).
    func wgsOpByWendy(counter: UInt64 = 1, value: String = "Achterstand bij de Testwoningbouw") -> SyncOperation {
        handMadeOp(replica: wendy.replicaID, counter: counter, household: household, purpose: .wgs, author: "wendy",
                   payload: .set(field: "wgs_notes", value: value, resolves: []), wall: server.clock.now)
    }
}

@testable import FieldCLI
import Foundation
import SyncCore
import SyncServer
import Testing

/// End-to-end tests of issue 5: real server, real CLI entry point, temporary homes.
@Suite(.serialized)
struct CLIWorkflowTests {
    @Test func concurrentOfflineEditsShowTheSameConflictAndResolveClearsIt() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        try await world.enroll("anna", role: "buurtcoach")
        try await world.enroll("bram", role: "wmo-consulent")
        let h = try await world.household(on: "anna", label: "Fam. Test")
        #expect(await world.admin(["assign", "bram", h]).code == 0)
        #expect(await world.cli("bram", ["sync"]).code == 0)

        // Both offline, same field.
        #expect(await world.cli("anna", ["set", h, "next_evaluation_date", "2027-01-10"]).code == 0)
        #expect(await world.cli("bram", ["set", h, "next_evaluation_date", "2027-02-20"]).code == 0)
        _ = await world.cli("anna", ["sync"])
        let second = await world.cli("bram", ["sync"])
        #expect(second.code == 4, "a new conflict needs attention: \(second.err)")
        _ = await world.cli("anna", ["sync"])

        let shownA = try world.json(ShownHousehold.self, await world.cli("anna", ["--json", "show", h]))
        let shownB = try world.json(ShownHousehold.self, await world.cli("bram", ["--json", "show", h]))
        let fieldA = try #require(shownA.field("next_evaluation_date"))
        let fieldB = try #require(shownB.field("next_evaluation_date"))
        #expect(fieldA.conflict && fieldB.conflict)
        #expect(fieldA.value == fieldB.value)
        #expect(Set(fieldA.values.map(\.value)) == ["2027-01-10", "2027-02-20"])
        #expect(fieldA.values.map(\.id) == fieldB.values.map(\.id))
        let human = await world.cli("bram", ["show", h])
        #expect(human.out.contains("CONFLICT"))
        #expect(human.out.contains(fieldA.values[1].id))

        let pick = fieldA.values.first { $0.value == "2027-01-10" }!.id
        let resolved = await world.cli("bram", ["resolve", h, "next_evaluation_date", "--pick", pick])
        #expect(resolved.code == 0, "\(resolved.err)")
        #expect(await world.cli("bram", ["sync"]).code == 0)
        #expect(await world.cli("anna", ["sync"]).code == 0)
        for name in ["anna", "bram"] {
            let conflicts = await world.cli(name, ["--json", "conflicts"])
            let list = try JSONSerialization.jsonObject(with: Data(conflicts.out.utf8)) as? [Any]
            #expect(list?.isEmpty == true)
            let shown = try world.json(ShownHousehold.self, await world.cli(name, ["--json", "show", h]))
            #expect(shown.field("next_evaluation_date")?.value == "2027-01-10")
        }
    }

    @Test func ungrantedPurposeNeverReachesTheDeviceUntilGrantedAndIsPurgedAfterRevoke() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        try await world.enroll("lisa", role: "schuldhulp")
        try await world.enroll("sam", role: "wmo-consulent")
        let h = try await world.household(on: "lisa", label: "Fam. Geheim")
        #expect(await world.admin(["assign", "sam", h]).code == 0)
        let planted = "Beslag op loon en huurachterstand (fictief planted 7Q3)"
        #expect(await world.cli("lisa", ["log", "add", h, "--purpose", "WGS", "--kind", "huisbezoek", planted]).code == 0)
        #expect(await world.cli("lisa", ["set", h, "wgs_notes", "Regeling loopt (fictief 8R4)"]).code == 0)
        #expect(await world.cli("lisa", ["sync"]).code == 0)

        func samHolds(_ text: String) async -> Bool {
            var outputs = ""
            for args in [["show", h], ["--json", "show", h], ["--json", "export", h], ["export", h], ["log", "list", h], ["households"], ["status"]] {
                let result = await world.cli("sam", args)
                outputs += result.out + result.err
            }
            return outputs.contains(text) || world.homeContains("sam", text)
        }
        #expect(await world.cli("sam", ["sync"]).code == 0)
        #expect(!(await samHolds("planted 7Q3")))
        #expect(!(await samHolds("fictief 8R4")))
        // The device refuses to write there itself.
        let refused = await world.cli("sam", ["set", h, "wgs_notes", "x"])
        #expect(refused.code == 2)
        #expect(refused.err.contains("WGS"))

        // Grant: it arrives complete at the next sync.
        #expect(await world.admin(["grant", "sam", "WGS", "--read", "--household", h]).code == 0)
        #expect(await world.cli("sam", ["sync"]).code == 0)
        let logs = await world.cli("sam", ["log", "list", h, "--purpose", "WGS"])
        #expect(logs.out.contains("planted 7Q3"))
        // Encrypted at rest even when held.
        #expect(!world.homeContains("sam", "planted 7Q3"))

        // Revoke: purged at the next sync.
        #expect(await world.admin(["revoke-grant", "sam", "WGS", "--household", h]).code == 0)
        let purge = await world.cli("sam", ["--json", "sync"])
        #expect(purge.code == 0)
        #expect(purge.out.contains("\"purged\" : 1"))
        #expect(!(await samHolds("planted 7Q3")))
    }

    @Test func erasurePurgesTheDeviceAndRejectsOfflineOpsForTheOldEpoch() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        try await world.enroll("wim", role: "wmo-consulent")
        let h = try await world.household(on: "wim", label: "Fam. Wissen")
        #expect(await world.cli("wim", ["log", "add", h, "--purpose", "WMO", "--kind", "telefoon", "Eerste gesprek (fictief)"]).code == 0)
        #expect(await world.cli("wim", ["sync"]).code == 0)
        // Offline write, then the server erases the WMO segment.
        #expect(await world.cli("wim", ["log", "add", h, "--purpose", "WMO", "--kind", "telefoon", "Geschreven voor de wissing (fictief)"]).code == 0)
        let erased = await world.admin(["--json", "erase", h, "--purpose", "WMO"])
        #expect(erased.code == 0, "\(erased.err)")
        let result = try world.json(AdminAPI.EraseResult.self, erased)
        #expect(result.erased.map(\.purpose) == [.wmo])
        #expect(result.devicesStillHolding.map(\.name) == ["laptop-wim"])
        let sync = await world.cli("wim", ["--json", "sync"])
        #expect(sync.code == 4)
        #expect(sync.out.contains("\"erased\" : 1"))
        let shown = try world.json(ShownHousehold.self, await world.cli("wim", ["--json", "show", h]))
        #expect(!shown.segments.contains { $0.purpose == "WMO" })
        #expect(!world.homeContains("wim", "fictief"))
        let again = await world.admin(["--json", "erase", h])
        #expect(again.code == 0)
        #expect(try world.json(AdminAPI.EraseResult.self, again).devicesStillHolding.isEmpty == false)

        // Following the erasure up, read-only: who has not purged yet.
        let followUp = try world.json(AdminAPI.EraseResult.self, await world.admin(["--json", "erase", h, "--status"]))
        #expect(followUp.erased.isEmpty)
        #expect(Set(followUp.erasedBefore.map(\.purpose)) == [.regie, .wmo])
        #expect(followUp.devicesStillHolding.map(\.name) == ["laptop-wim"])
        _ = await world.cli("wim", ["sync"])
        let done = await world.admin(["erase", h, "--status"])
        #expect(done.code == 0)
        #expect(done.out.contains("Erased before") && done.out.contains("No device reports holding it."), "\(done.out)")
        // An erase with nothing left erases nothing and answers the same way.
        let repeated = try world.json(AdminAPI.EraseResult.self, await world.admin(["--json", "erase", h]))
        #expect(repeated.erased.isEmpty && repeated.devicesStillHolding.isEmpty && !repeated.erasedBefore.isEmpty)
        #expect(await world.admin(["erase", h, "--purpose", "WGS"]).code == 1, "a purpose never stored or erased is not found")
        #expect(await world.admin(["erase", h, "--purpose", "WGS", "--status"]).code == 1)
    }

    @Test func aLongOfflineDaySyncsInChunksUnderTheServersBodyLimit() async throws {
        let world = try await CLIWorld(maxBody: 16 << 10)
        defer { Task { await world.finish() } }
        try await world.enroll("bas", role: "buurtcoach")
        let h = try await world.household(on: "bas", label: "Fam. Stapel (fictief)")
        let visit = String(repeating: "Keukentafelgesprek over de planning en de afspraken (fictief). ", count: 8)
        for i in 0..<60 {
            #expect(await world.cli("bas", ["log", "add", h, "--purpose", "REGIE", "--kind", "huisbezoek", "Bezoek \(i): \(visit)"]).code == 0)
        }
        for value in ["Concept-wijk (fictief)", "Proefdorp-Oost"] {
            #expect(await world.cli("bas", ["set", h, "area", value]).code == 0)
        }
        let sync = await world.cli("bas", ["--json", "sync"])
        #expect(sync.code == 0, "sync: \(sync.err)")
        struct Summary: Decodable { var rounds: Int; var pushed: Int; var accepted: Int; var pendingLeft: Int }
        let summary = try world.json(Summary.self, sync)
        #expect(summary.rounds > 2, "60 visits of ~500 bytes do not fit in one 16 KiB body")
        #expect(summary.pushed == 62 && summary.accepted == 62 && summary.pendingLeft == 0)
        // A colleague's fresh device gets all of it, and only the last value of the field.
        try await world.enroll("noor", role: "buurtcoach")
        #expect(await world.admin(["assign", "noor", h]).code == 0)
        #expect(await world.cli("noor", ["sync"]).code == 0)
        let shown = await world.cli("noor", ["show", h])
        #expect(shown.out.contains("Proefdorp-Oost"))
        let logs = await world.cli("noor", ["--json", "log", "list", h])
        #expect(logs.out.components(separatedBy: "Bezoek ").count - 1 == 60)
        // Her store keeps the ~30 KB of visits LZ4-compressed under its seal (decision 43)
        // and reads them back: what `log list` just showed came through it.
        let store = try LocalStore(home: world.home("noor"), create: false)
        let canonical = try #require(try store.loadReplica()).1.segmentBytes.values.reduce(0) { $0 + $1.count }
        let sealed = try store.sealedSegmentBytes()
        #expect(canonical > 30_000 && sealed * 3 < canonical, "sealed \(sealed) B for \(canonical) B canonical")
    }

    @Test func revokedDeviceWipesItsStoreAtTheNextSync() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        try await world.enroll("kim", role: "buurtcoach")
        let h = try await world.household(on: "kim", label: "Fam. Kwijt")
        _ = h
        let devices = try world.json([AdminAPI.DeviceInfo].self, await world.admin(["--json", "device", "list"]))
        #expect(devices.count == 1 && devices[0].lastSyncAt != nil)
        #expect(await world.admin(["device", "revoke", devices[0].id]).code == 0)
        let sync = await world.cli("kim", ["sync"])
        #expect(sync.code == 2)
        #expect(sync.out.contains("wiped"))
        #expect(!FileManager.default.fileExists(atPath: world.home("kim").appendingPathComponent("store.sqlite").path))
        #expect(!FileManager.default.fileExists(atPath: world.home("kim").appendingPathComponent("device.key").path))
        #expect(await world.cli("kim", ["households"]).code == 5)
    }

    @Test func serverDownFailsFastWithExitThreeAndKeepsPendingOps() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        try await world.enroll("otto", role: "buurtcoach")
        let h = try await world.household(on: "otto", label: "Fam. Offline")
        #expect(await world.cli("otto", ["set", h, "area", "Dorpen"]).code == 0)
        await world.stopServer()
        let started = Date()
        let down = await world.cli("otto", ["sync"])
        #expect(down.code == 3)
        #expect(Date().timeIntervalSince(started) < 8)
        #expect(down.err.contains("Cannot reach"))
        let status = try JSONSerialization.jsonObject(with: Data(await world.cli("otto", ["--json", "status"]).out.utf8)) as? [String: Any]
        #expect(status?["pending"] as? Int == 1)
        try await world.restartServer()
        #expect(await world.cli("otto", ["sync"]).code == 0)
        let after = try JSONSerialization.jsonObject(with: Data(await world.cli("otto", ["--json", "status"]).out.utf8)) as? [String: Any]
        #expect(after?["pending"] as? Int == 0)
    }

    @Test(arguments: [
        ["set"], ["set", "abc"], ["log", "add", "x", "--kind", "huisbezoek", "t"], ["resolve", "h", "f"],
        ["resolve", "h", "f", "--pick", "1.2", "--value", "v"], ["no-such-command"], ["show"], ["--home"],
        ["admin", "grant", "u", "WGS"], ["log", "add", "h", "--purpose", "WMO", "--kind", "telefoon", "--at", "gisteren", "x"],
    ])
    func argumentErrorsExitOneWithUsage(_ arguments: [String]) async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        let result = await world.cli("nobody", arguments)
        #expect(result.code == 1, "\(arguments): \(result.err)")
        #expect(result.err.contains("Usage") || result.err.contains("Error") || result.err.contains("Give"), "\(result.err)")
    }

    @Test func worksOfflineAndRefusesUngrantedWritesBeforeQueueing() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        try await world.enroll("noor", role: "buurtcoach")
        await world.stopServer()
        let created = await world.cli("noor", ["household", "new", "--label", "Fam. Keukentafel"])
        #expect(created.code == 0)
        let h = created.out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(await world.cli("noor", ["set", h, "regisseur", "noor"]).code == 0)
        #expect(await world.cli("noor", ["log", "add", h, "--purpose", "INFORMEEL", "--kind", "huisbezoek", "--at", "2026-11-30T10:00", "Kennismaking."]).code == 0)
        let goal = await world.cli("noor", ["--json", "goal", "add", h, "--purpose", "REGIE", "Schulden in kaart"])
        #expect(goal.code == 0)
        let goalID = try JSONDecoder().decode([String: String].self, from: Data(goal.out.utf8))["goalID"]!
        #expect(await world.cli("noor", ["goal", "done", String(h.prefix(8)), goalID]).code == 0)
        let list = await world.cli("noor", ["goal", "list", h])
        #expect(list.out.contains("done"))
        let refused = await world.cli("noor", ["log", "add", h, "--purpose", "WMO", "--kind", "huisbezoek", "x"])
        #expect(refused.code == 2)
        #expect(refused.err.contains("WMO"))
        let unknown = await world.cli("noor", ["set", h, "no_such_field", "x"])
        #expect(unknown.code == 1, "an unknown field is a usage error")
        let badValue = await world.cli("noor", ["set", h, "next_evaluation_date", "morgen"])
        #expect(badValue.code == 1, "a value of the wrong type is a usage error, not a policy refusal")
        #expect(badValue.err.contains("YYYY-MM-DD"))
        let status = try JSONSerialization.jsonObject(with: Data(await world.cli("noor", ["--json", "status"]).out.utf8)) as? [String: Any]
        #expect(status?["pending"] as? Int == 7, "goal done re-asserts the text with the status")
        try await world.restartServer()
        #expect(await world.cli("noor", ["sync"]).code == 0)
        let rejected = await world.cli("noor", ["--json", "rejected"])
        #expect(rejected.out.trimmingCharacters(in: .whitespacesAndNewlines).hasPrefix("["))
    }

    /// What the user typed wrong is a usage error (exit 1) that names the fix, and
    /// nothing is queued or stored: an unknown entry or goal ID, a contact dated
    /// years ahead, an unknown user, an end date that has passed.
    @Test func mistypedIDsDatesAndNamesAreUsageErrorsThatChangeNothing() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        try await world.enroll("noor", role: "buurtcoach")
        let h = try await world.household(on: "noor", label: "Fam. Typefout")
        #expect(await world.cli("noor", ["log", "add", h, "--purpose", "INFORMEEL", "--kind", "telefoon", "Gebeld."]).code == 0)
        let pendingBefore = (try JSONSerialization.jsonObject(with: Data(await world.cli("noor", ["--json", "status"]).out.utf8)) as? [String: Any])?["pending"] as? Int

        let correction = await world.cli("noor", ["--json", "log", "add", h, "--purpose", "INFORMEEL", "--kind", "telefoon",
                                                  "--corrects", "9.99", "Correctie."])
        #expect(correction.code == 1, "\(correction.err)")
        #expect(correction.out.contains("notFound") && correction.out.contains("9.99") && correction.out.contains("log list"))
        let ungranted = await world.cli("noor", ["log", "add", h, "--purpose", "WMO", "--kind", "telefoon", "--corrects", "9.99", "x"])
        #expect(ungranted.code == 2, "a purpose the user is not granted is still a policy refusal: \(ungranted.err)")
        let future = await world.cli("noor", ["log", "add", h, "--purpose", "INFORMEEL", "--kind", "huisbezoek", "--at", "2062-03-01", "x"])
        #expect(future.code == 1)
        #expect(future.err.contains("more than a day after"))
        let goal = await world.cli("noor", ["goal", "done", h, "9.99"])
        #expect(goal.code == 1)
        #expect(goal.err.contains("goal list"))
        let pendingAfter = (try JSONSerialization.jsonObject(with: Data(await world.cli("noor", ["--json", "status"]).out.utf8)) as? [String: Any])?["pending"] as? Int
        #expect(pendingBefore != nil && pendingBefore == pendingAfter, "a refused command queues nothing")
        #expect(await world.cli("noor", ["sync"]).code == 0)
        #expect(await world.cli("noor", ["log", "list", h]).out.contains("Gebeld."))

        let unknownUser = await world.admin(["assign", "nobody", h])
        #expect(unknownUser.code == 1)
        #expect(unknownUser.err.contains("user list"))
        let unknownRole = await world.admin(["user", "add", "piet", "--role", "tovenaar"])
        #expect(unknownRole.code == 1)
        #expect(unknownRole.err.contains("buurtcoach"), "the error lists the roles")
        let expired = await world.admin(["grant", "noor", "WGS", "--read", "--until", "2020-01-01"])
        #expect(expired.code == 1)
        #expect(expired.err.contains("already passed"))
        let access = await world.admin(["access", h])
        #expect(access.code == 0)
        #expect(!access.out.contains("WGS"), "nothing was granted")
    }

    @Test func aHomeThatIsAFileIsAUsageError() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        let file = world.home("plain-file")
        try Data("not a directory".utf8).write(to: file)
        let result = await world.cli(nil, ["--home", file.path, "households"])
        #expect(result.code == 1)
        #expect(result.err.contains("is a file, not a directory"), "\(result.err)")
        #expect(try Data(contentsOf: file) == Data("not a directory".utf8), "the file is left as it was")
    }

    @Test func localReadsAreAuditedOnTheServer() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        try await world.enroll("ria", role: "wmo-consulent")
        let h = try await world.household(on: "ria", label: "Fam. Inzage")
        _ = await world.cli("ria", ["show", h])
        _ = await world.cli("ria", ["export", h])
        _ = await world.cli("ria", ["log", "list", h])
        #expect(await world.cli("ria", ["sync"]).code == 0)
        let audit = try world.json([AuditRecord].self, await world.admin(["--json", "audit", "--household", h]))
        let reads = audit.filter { $0.action == "offlineRead" }
        #expect(reads.count == 3)
        #expect(Set(reads.map { $0.detail.split(separator: " ").first.map(String.init) ?? "" }) == ["show", "export", "logList"])
        let status = try JSONSerialization.jsonObject(with: Data(await world.cli("ria", ["--json", "status"]).out.utf8)) as? [String: Any]
        #expect(status?["auditQueued"] as? Int == 0)
        #expect(await world.admin(["audit", "--verify"]).code == 0)
    }

    @Test func aDeviceClockDaysAheadIsShownToAdmins() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        try await world.enroll("tim", role: "buurtcoach")
        let h = try await world.household(on: "tim", label: "Fam. Klok")
        let ahead = ["FIELDCLI_NOW_MS": String(UInt64(Date().timeIntervalSince1970 * 1000) + 2 * 86_400_000)]
        #expect(await world.cli("tim", ["set", h, "area", "Centrum"], environment: ahead).code == 0)
        #expect(await world.cli("tim", ["sync"], environment: ahead).code == 0)
        let devices = try world.json([AdminAPI.DeviceInfo].self, await world.admin(["--json", "device", "list"]))
        #expect(devices.first?.clockSkew == 1)
        #expect(await world.admin(["device", "list"]).out.contains("1 ops ahead"))

        // The device itself says its clock is fast, at the sync and in status, and stops once it is right.
        let synced = await world.cli("tim", ["sync"], environment: ahead)
        #expect(synced.out.contains("This computer's clock is 2880 minutes ahead of the server's"), "\(synced.out)")
        let status = try JSONSerialization.jsonObject(with: Data(await world.cli("tim", ["--json", "status"]).out.utf8)) as? [String: Any]
        #expect(status?["clockAheadMinutes"] as? Int == 2880)
        #expect(await world.cli("tim", ["status"]).out.contains("Clock: 2880 minutes ahead"))
        #expect(!(await world.cli("tim", ["sync"]).out.contains("clock is")), "a right clock is not reported")
        #expect(!(await world.cli("tim", ["status"]).out.contains("Clock: ")))
    }

    @Test func householdsOnboardedTwiceOfflineAreFlaggedForTheAdmin() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        try await world.enroll("ada", role: "buurtcoach")
        try await world.enroll("bob", role: "buurtcoach")
        let first = try await world.household(on: "ada", label: "Fam. Dubbel")
        #expect(await world.cli("ada", ["set", first, "address", "Dorpsstraat 1, Ergens"]).code == 0)
        _ = await world.cli("ada", ["sync"])
        let second = try await world.household(on: "bob", label: "Familie Dubbel")
        #expect(await world.cli("bob", ["set", second, "address", "dorpsstraat 1 ergens"]).code == 0)
        _ = await world.cli("bob", ["sync"])
        let list = try world.json([AdminAPI.HouseholdInfo].self, await world.admin(["--json", "households"]))
        #expect(list.first { $0.id.description == first }?.likelyDuplicates.map(\.description) == [second])
        #expect(list.first { $0.id.description == second }?.likelyDuplicates.map(\.description) == [first])
        #expect(!(await world.admin(["households"]).out.contains("Dorpsstraat")), "the admin list shows no content")
    }

    @Test func homeDirectoryIsPrivate() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        try await world.enroll("pim", role: "buurtcoach")
        let home = world.home("pim")
        #expect(FileSecurity.mode(of: home).map { $0 & 0o777 } == 0o700)
        for name in ["device.key", "store.sqlite"] {
            #expect(FileSecurity.mode(of: home.appendingPathComponent(name)).map { $0 & 0o777 } == 0o600, "\(name)")
        }
    }
}

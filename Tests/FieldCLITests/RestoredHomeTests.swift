import FieldCLI
import Foundation
import SyncServer
import Testing

/// A home directory restored from a backup is older than what its device sent the server: the
/// server has dots and audit numbers of this device that the store never saw. Nothing written
/// since may be lost, and what the device sent after the backup must come back to it.
@Suite("Restored home")
struct RestoredHomeTests {
    @Test("a home restored from an older backup: refused writes keep their text, the segment comes back whole, new writes land, reads are audited")
    func aRestoredHomeLosesNothing() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        try await world.enroll("noor", role: "buurtcoach")
        try await world.enroll("piet", role: "buurtcoach")
        let h = try await world.household(on: "noor", label: "Fam. Terugzet (fictief)")
        #expect(await world.admin(["assign", "piet", h]).code == 0)
        #expect(await world.cli("noor", ["show", h]).code == 0)
        #expect(await world.cli("noor", ["log", "add", h, "--purpose", "INFORMEEL", "--kind", "telefoon", "Informeel voor de back-up (fictief)"]).code == 0)
        #expect(await world.cli("noor", ["sync"]).code == 0)

        let backup = world.root.appendingPathComponent("backup-noor")
        try FileManager.default.copyItem(at: world.home("noor"), to: backup)

        // After the backup, Noor's device sends a goal, a log entry and two reads.
        #expect(await world.cli("noor", ["goal", "add", h, "--purpose", "REGIE", "Na de back-up gesteld doel (fictief)"]).code == 0)
        #expect(await world.cli("noor", ["log", "add", h, "--purpose", "REGIE", "--kind", "telefoon", "Na de back-up gebeld (fictief)"]).code == 0)
        #expect(await world.cli("noor", ["log", "add", h, "--purpose", "INFORMEEL", "--kind", "huisbezoek", "Informeel na de back-up (fictief)"]).code == 0)
        #expect(await world.cli("noor", ["show", h]).code == 0)
        #expect(await world.cli("noor", ["show", h]).code == 0)
        #expect(await world.cli("noor", ["sync"]).code == 0)

        // The laptop's home is restored from the backup; Noor works on, then syncs.
        try FileManager.default.removeItem(at: world.home("noor"))
        try FileManager.default.copyItem(at: backup, to: world.home("noor"))
        #expect(await world.cli("noor", ["log", "add", h, "--purpose", "REGIE", "--kind", "huisbezoek", "Verslag na het terugzetten (fictief)"]).code == 0)
        #expect(await world.cli("noor", ["log", "list", h]).code == 0)
        let sync = await world.cli("noor", ["sync"])
        #expect(sync.code == 4, "\(sync.out) \(sync.err)")
        #expect(sync.out.contains("restored from a backup"), "\(sync.out)")

        // The refused entry is shown with its text, to be written again.
        let rejected = await world.cli("noor", ["rejected"])
        #expect(rejected.out.contains("dotReuse"), "\(rejected.out)")
        #expect(rejected.out.contains("Verslag na het terugzetten (fictief)"), "\(rejected.out)")
        // What the device sent after the backup is back on it.
        let logs = await world.cli("noor", ["log", "list", h]).out
        #expect(logs.contains("Na de back-up gebeld (fictief)"), "\(logs)")
        #expect(logs.contains("Informeel na de back-up (fictief)"), "a segment not written to again comes back whole too: \(logs)")
        #expect(await world.cli("noor", ["goal", "list", h]).out.contains("Na de back-up gesteld doel (fictief)"))

        // Written again, it lands: new writes no longer reuse IDs.
        #expect(await world.cli("noor", ["log", "add", h, "--purpose", "REGIE", "--kind", "huisbezoek", "Verslag na het terugzetten, opnieuw (fictief)"]).code == 0)
        let again = await world.cli("noor", ["sync"])
        #expect(again.code == 0, "\(again.out) \(again.err)")
        #expect(await world.cli("piet", ["sync"]).code == 0)
        #expect(await world.cli("piet", ["log", "list", h]).out.contains("Verslag na het terugzetten, opnieuw (fictief)"))

        // The read made after the restore reused an audit number the server had; it was numbered again and stored.
        let audit = try world.json([AuditRecord].self, await world.admin(["--json", "audit"]))
        let lists = audit.filter { $0.action == "offlineRead" && $0.actor == "noor" && $0.detail.hasPrefix("logList") }
        #expect(lists.count == 2, "both log lists after the restore are in the audit log: \(lists.map(\.detail))")
        #expect(!audit.contains { $0.action == "offlineReadGap" && $0.actor == "noor" }, "\(audit.filter { $0.action == "offlineReadGap" }.map(\.detail))")
    }

    @Test("a restored device that gives an absorbed draft's ID to another write gets dotReuse, not an acceptance that stores nothing",
          arguments: ["a log entry", "the same field"])
    func anAbsorbedDraftsIDIsNotTakenForAnotherWrite(_ reuse: String) async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        try await world.enroll("noor", role: "buurtcoach")
        let h = try await world.household(on: "noor", label: "Fam. Opgeslokt (fictief)")
        let backup = world.root.appendingPathComponent("backup-noor")
        try FileManager.default.copyItem(at: world.home("noor"), to: backup)

        // Two writes of one field in one sync: the first is absorbed by the second, its content never sent.
        #expect(await world.cli("noor", ["set", h, "next_evaluation_date", "2027-01-01"]).code == 0)
        #expect(await world.cli("noor", ["set", h, "next_evaluation_date", "2027-01-02"]).code == 0)
        #expect(await world.cli("noor", ["sync"]).code == 0)

        try FileManager.default.removeItem(at: world.home("noor"))
        try FileManager.default.copyItem(at: backup, to: world.home("noor"))
        let (write, text): ([String], String) = reuse == "a log entry"
            ? (["log", "add", h, "--purpose", "REGIE", "--kind", "telefoon", "Op een opgeslokt ID (fictief)"], "Op een opgeslokt ID (fictief)")
            : (["set", h, "next_evaluation_date", "2027-03-03"], "2027-03-03")
        #expect(await world.cli("noor", write).code == 0)
        let sync = await world.cli("noor", ["sync"])
        #expect(sync.code == 4, "\(sync.out)")
        let rejected = await world.cli("noor", ["rejected"]).out
        #expect(rejected.contains("dotReuse") && rejected.contains(text), "\(rejected)")
    }
}

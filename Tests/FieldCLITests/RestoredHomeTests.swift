import FieldCLI
import Foundation
import Testing

/// A home directory restored from a backup is older than what its device sent the server: the
/// server has dots of this device that the store never saw. Nothing written since may be lost,
/// and what the device sent after the backup must come back to it.
@Suite("Restored home")
struct RestoredHomeTests {
    @Test("a home restored from an older backup gets back what it had sent, and what it wrote since lands with new IDs, concurrent writes still a conflict")
    func aRestoredHomeLosesNothing() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        try await world.enroll("noor", role: "buurtcoach")
        try await world.enroll("piet", role: "buurtcoach")
        let h = try await world.household(on: "noor", label: "Fam. Terugzet (fictief)")
        #expect(await world.admin(["assign", "piet", h]).code == 0)
        #expect(await world.cli("noor", ["log", "add", h, "--purpose", "INFORMEEL", "--kind", "telefoon", "Informeel voor de back-up (fictief)"]).code == 0)
        #expect(await world.cli("noor", ["sync"]).code == 0)
        #expect(await world.cli("piet", ["sync"]).code == 0)

        let backup = world.root.appendingPathComponent("backup-noor")
        try FileManager.default.copyItem(at: world.home("noor"), to: backup)

        // After the backup: Noor's device sends a goal and a log entry; Piet sets the evaluation date.
        #expect(await world.cli("noor", ["goal", "add", h, "--purpose", "REGIE", "Na de back-up gesteld doel (fictief)"]).code == 0)
        #expect(await world.cli("noor", ["log", "add", h, "--purpose", "REGIE", "--kind", "telefoon", "Na de back-up gebeld (fictief)"]).code == 0)
        // ... and an entry in a purpose it does not write to again after the restore.
        #expect(await world.cli("noor", ["log", "add", h, "--purpose", "INFORMEEL", "--kind", "huisbezoek", "Informeel na de back-up (fictief)"]).code == 0)
        #expect(await world.cli("noor", ["sync"]).code == 0)
        #expect(await world.cli("piet", ["sync"]).code == 0)
        #expect(await world.cli("piet", ["set", h, "next_evaluation_date", "2027-05-01"]).code == 0)
        #expect(await world.cli("piet", ["sync"]).code == 0)

        // The laptop's home is restored from the backup; Noor works on, then syncs.
        try FileManager.default.removeItem(at: world.home("noor"))
        try FileManager.default.copyItem(at: backup, to: world.home("noor"))
        // More than the server lost: the first two reuse IDs the server has, the last two are new to
        // it, and the later date must still win over the earlier one.
        #expect(await world.cli("noor", ["set", h, "next_evaluation_date", "2027-06-01"]).code == 0)
        #expect(await world.cli("noor", ["log", "add", h, "--purpose", "REGIE", "--kind", "huisbezoek", "Verslag na het terugzetten (fictief)"]).code == 0)
        #expect(await world.cli("noor", ["set", h, "next_evaluation_date", "2027-06-15"]).code == 0)
        #expect(await world.cli("noor", ["goal", "add", h, "--purpose", "REGIE", "Doel na het terugzetten (fictief)"]).code == 0)
        let sync = await world.cli("noor", ["sync"])
        #expect(sync.code == 4, "a new conflict (Piet's date), nothing rejected: \(sync.out) \(sync.err)")
        #expect(sync.out.contains("restored from a backup"), "\(sync.out)")
        #expect(sync.out.contains("4 change(s) made since were written again"), "\(sync.out)")

        #expect(await world.cli("noor", ["rejected"]).out.contains("No rejected changes"))
        for worker in ["noor", "piet"] {
            _ = await world.cli(worker, ["sync"])
            let shown = try world.json(ShownHousehold.self, await world.cli(worker, ["--json", "show", h, "--purpose", "REGIE"]))
            let all = try world.json(ShownHousehold.self, await world.cli(worker, ["--json", "show", h]))
            #expect(all.segments.flatMap(\.logs).map(\.text).contains("Informeel na de back-up (fictief)"), "\(worker): every segment comes back")
            let logs = shown.segments.flatMap(\.logs).map(\.text)
            for text in ["Na de back-up gebeld (fictief)", "Verslag na het terugzetten (fictief)"] {
                #expect(logs.filter { $0 == text }.count == 1, "\(worker): \(text) once")
            }
            #expect(logs.contains("Na de back-up gebeld (fictief)"), "\(worker): what the device sent after the backup is back")
            #expect(logs.contains("Verslag na het terugzetten (fictief)"), "\(worker): what it wrote after the restore landed")
            let date = try #require(shown.segments.flatMap(\.fields).first { $0.name == "next_evaluation_date" })
            #expect(date.conflict, "\(worker): Noor had not seen Piet's date, so both stay")
            #expect(Set(date.values.map(\.value)) == ["2027-05-01", "2027-06-15"], "\(worker): Noor's later date replaced her earlier one")
            let goals = await world.cli(worker, ["goal", "list", h]).out
            for goal in ["Na de back-up gesteld doel (fictief)", "Doel na het terugzetten (fictief)"] {
                #expect(goals.components(separatedBy: goal).count == 2, "\(worker): \(goal) once in \(goals)")
            }
        }
        // And the device goes on normally.
        #expect(await world.cli("noor", ["log", "add", h, "--purpose", "REGIE", "--kind", "telefoon", "Daarna gewoon verder (fictief)"]).code == 0)
        #expect(await world.cli("noor", ["sync"]).code == 0)
        #expect(await world.cli("noor", ["rejected"]).out.contains("No rejected changes"))
    }
}

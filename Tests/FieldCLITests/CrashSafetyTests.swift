import FieldCLI
import Foundation
import Testing

/// A crash between any two steps loses no committed local edit (issue 5):
/// the real `fieldcli` binary is SIGKILLed at random moments while it writes;
/// every command that reported success must still be there, and the store
/// must still open.
@Suite(.serialized)
struct CrashSafetyTests {
    static func binary(_ name: String) -> URL? {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return nil
    }

    @Test func killedWritesLoseNothingCommitted() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        try await world.enroll("kees", role: "buurtcoach")
        let h = try await world.household(on: "kees", label: "Fam. Crash")
        let fieldcli = try #require(Self.binary("fieldcli"), "build the fieldcli binary first (swift build)")
        var committed: [String] = []
        var rng = SystemRandomNumberGenerator()
        for round in 0..<24 {
            let text = "Notitie \(round) (fictief)"
            let process = Process()
            process.executableURL = fieldcli
            process.arguments = ["--home", world.home("kees").path, "log", "add", h, "--purpose", "INFORMEEL", "--kind", "telefoon", text]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            if round % 2 == 1 {
                // Kill it somewhere between start and finish.
                usleep(UInt32.random(in: 1_000...40_000, using: &rng))
                kill(process.processIdentifier, SIGKILL)
            }
            process.waitUntilExit()
            if process.terminationReason == .exit && process.terminationStatus == 0 { committed.append(text) }
        }
        #expect(committed.count >= 12)
        let list = await world.cli("kees", ["log", "list", h])
        #expect(list.code == 0, "the store must still open: \(list.err)")
        for text in committed { #expect(list.out.contains(text), "lost a committed edit: \(text)") }
        #expect(await world.cli("kees", ["sync"]).code == 0)
        let status = try JSONSerialization.jsonObject(with: Data(await world.cli("kees", ["--json", "status"]).out.utf8)) as? [String: Any]
        #expect(status?["pending"] as? Int == 0)
    }
}

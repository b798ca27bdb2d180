import FieldCLI
import Foundation
import SyncCore
import Testing

/// DESIGN §7: the device key may be sealed under a passphrase (scrypt), and
/// server policy may require it. Real server, real CLI entry point.
@Suite(.serialized)
struct PassphraseTests {
    let first = ["FIELDCLI_PASSPHRASE": "keukentafel-1234"]
    let second = ["FIELDCLI_PASSPHRASE": "dorpshuis-5678"]

    struct KeyState: Decodable {
        var passphraseProtected: Bool
        var passphraseRequired: Bool
    }

    struct StatusKey: Decodable { var passphraseProtected: Bool }

    struct ErrorBody: Decodable {
        struct Inner: Decodable { var code: String; var message: String }
        var error: Inner
    }

    func keyFile(_ world: CLIWorld, _ name: String) throws -> Data {
        try Data(contentsOf: world.home(name).appendingPathComponent("device.key"))
    }

    @Test func aPassphraseSealsTheKeyAndEveryCommandNeedsIt() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        let enrolled = try await world.enroll("ann", role: "buurtcoach", environment: ["FIELDCLI_NEW_PASSPHRASE": first["FIELDCLI_PASSPHRASE"]!])
        #expect(try world.json(KeyState.self, enrolled).passphraseProtected)
        let key = try keyFile(world, "ann")
        #expect(key.count != 32 && key.prefix(4) == Data("FSK1".utf8), "the key file is the sealed form")
        let mode = try FileManager.default.attributesOfItem(atPath: world.home("ann").appendingPathComponent("device.key").path)[.posixPermissions] as? Int
        #expect(mode == 0o600)

        let created = await world.cli("ann", ["household", "new", "--label", "Fam. Wachtwoord"], environment: first)
        #expect(created.code == 0, "\(created.err)")
        let household = created.out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(await world.cli("ann", ["sync"], environment: first).code == 0)
        let status = await world.cli("ann", ["--json", "status"], environment: first)
        #expect(try world.json(StatusKey.self, status).passphraseProtected, "status shows the key is protected")

        // No passphrase: a usage error that says where to give it. A wrong one: refused, nothing opened.
        let missing = await world.cli("ann", ["--json", "households"])
        #expect(missing.code == 1)
        #expect(try world.json(ErrorBody.self, missing).error.code == "passphraseRequired")
        #expect(missing.out.contains("FIELDCLI_PASSPHRASE"))
        let wrong = await world.cli("ann", ["--json", "show", household], environment: second)
        #expect(wrong.code == 5)
        #expect(try world.json(ErrorBody.self, wrong).error.code == "wrongPassphrase")
        #expect(!wrong.out.contains("Wachtwoord"))

        // A passphrase that is too short is refused and changes nothing.
        let short = await world.cli("ann", ["passphrase", "set"], environment: first.merging(["FIELDCLI_NEW_PASSPHRASE": "kort"]) { $1 })
        #expect(short.code == 1)
        #expect(try keyFile(world, "ann") == key)

        // Change it: the old one stops working, the data is all still there (the data key did not change).
        let changed = await world.cli("ann", ["passphrase", "set"], environment: first.merging(["FIELDCLI_NEW_PASSPHRASE": second["FIELDCLI_PASSPHRASE"]!]) { $1 })
        #expect(changed.code == 0, "\(changed.err)")
        #expect(await world.cli("ann", ["households"], environment: first).code == 5)
        let shown = await world.cli("ann", ["show", household], environment: second)
        #expect(shown.code == 0 && shown.out.contains("Fam. Wachtwoord"))
        #expect(!FileManager.default.fileExists(atPath: world.home("ann").appendingPathComponent("device.key.old").path),
                "the replaced key file is scrubbed")

        // Remove it: back to a plain 32-byte key, commands need nothing.
        let removed = await world.cli("ann", ["--json", "passphrase", "remove"], environment: second)
        #expect(removed.code == 0)
        #expect(try !world.json(KeyState.self, removed).passphraseProtected)
        #expect(try keyFile(world, "ann").count == 32)
        #expect(await world.cli("ann", ["show", household]).code == 0)
        #expect(await world.cli("ann", ["sync"]).code == 0)
    }

    @Test func aServerThatRequiresAPassphraseGetsNothingFromADeviceWithoutOne() async throws {
        var policy = PolicyFile.defaultPolicy(schema: .defaultHouseholdPlan())
        policy.requireDevicePassphrase = true
        let world = try await CLIWorld(policy: policy)
        defer { Task { await world.finish() } }
        let enrolled = try await world.enroll("bob", role: "buurtcoach")
        let state = try world.json(KeyState.self, enrolled)
        #expect(state.passphraseRequired && !state.passphraseProtected)

        // Until a passphrase is set, nothing runs (exit 2, policy) and nothing is synced.
        let sync = await world.cli("bob", ["--json", "sync"])
        #expect(sync.code == 2)
        #expect(try world.json(ErrorBody.self, sync).error.code == "passphraseRequired")
        #expect(sync.out.contains("fieldcli passphrase set"))
        #expect(await world.cli("bob", ["household", "new", "--label", "Fam. Verplicht"]).code == 2)
        #expect(await world.cli("bob", ["passphrase", "remove"]).code == 2)

        let set = await world.cli("bob", ["--json", "passphrase", "set"], environment: ["FIELDCLI_NEW_PASSPHRASE": first["FIELDCLI_PASSPHRASE"]!])
        #expect(set.code == 0, "\(set.err)")
        #expect(try world.json(KeyState.self, set).passphraseProtected)
        #expect(await world.cli("bob", ["household", "new", "--label", "Fam. Verplicht"], environment: first).code == 0)
        #expect(await world.cli("bob", ["sync"], environment: first).code == 0)

        // The server's requirement keeps it: remove is refused and the key stays sealed.
        let remove = await world.cli("bob", ["--json", "passphrase", "remove"], environment: first)
        #expect(remove.code == 2)
        #expect(try keyFile(world, "bob").count != 32)
    }

    @Test func aKeyRewriteInterruptedAtAnyPointLeavesAWorkingKey() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        try await world.enroll("cas", role: "buurtcoach")
        let home = world.home("cas")
        let keyURL = home.appendingPathComponent("device.key")
        let oldURL = home.appendingPathComponent("device.key.old")
        #expect(await world.cli("cas", ["household", "new", "--label", "Fam. Onderbroken"]).code == 0)

        // Crash after linking the old key aside, before the new one was renamed in: the link is the live key.
        try FileManager.default.linkItem(at: keyURL, to: oldURL)
        #expect(await world.cli("cas", ["households"]).code == 0)
        #expect(!FileManager.default.fileExists(atPath: oldURL.path))
        #expect(try keyFile(world, "cas").count == 32, "the live key was not scrubbed through the link")

        // Crash after the rename, before the scrub: the leftover is a separate, stale copy and is wiped.
        let set = await world.cli("cas", ["passphrase", "set"], environment: ["FIELDCLI_NEW_PASSPHRASE": first["FIELDCLI_PASSPHRASE"]!])
        #expect(set.code == 0)
        try Data(repeating: 7, count: 32).write(to: oldURL)
        let listed = await world.cli("cas", ["households"], environment: first)
        #expect(listed.code == 0 && listed.out.contains("Fam. Onderbroken"))
        #expect(!FileManager.default.fileExists(atPath: oldURL.path))

        // Crash while writing the new file: a readable `.tmp` with key bytes is left beside the live key.
        let tmpURL = home.appendingPathComponent("device.key.tmp")
        try Data(repeating: 9, count: 32).write(to: tmpURL)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: tmpURL.path)
        #expect(await world.cli("cas", ["households"], environment: first).code == 0)
        #expect(!FileManager.default.fileExists(atPath: tmpURL.path), "the unrenamed key copy was scrubbed")

        // A leftover `.tmp` with a loose mode never lends it to the next key file.
        try Data(repeating: 9, count: 32).write(to: tmpURL)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: tmpURL.path)
        let change = await world.cli("cas", ["passphrase", "set"],
                                     environment: first.merging(["FIELDCLI_NEW_PASSPHRASE": "een ander lang geheim"]) { $1 })
        #expect(change.code == 0)
        let mode = try FileManager.default.attributesOfItem(atPath: keyURL.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(!FileManager.default.fileExists(atPath: tmpURL.path))
    }

    /// A key file left without a store (an interrupted wipe) is replaced at enrollment, not reused.
    @Test func enrollingOverALeftoverKeyStartsAFreshOne() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        let home = world.home("dirk")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        let leftover = Data("FSK1".utf8) + Data(repeating: 1, count: 60)
        try leftover.write(to: home.appendingPathComponent("device.key"))
        try await world.enroll("dirk", role: "buurtcoach")
        #expect(try keyFile(world, "dirk") != leftover)
        #expect(try keyFile(world, "dirk").count == 32)
        #expect(await world.cli("dirk", ["households"]).code == 0)
    }
}

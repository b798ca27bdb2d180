import FieldCLI
import Foundation
import SyncCore
import SyncServer
import Testing

/// What the user typed reaches the command they meant, and what goes wrong
/// says what to do: the findings of a walk through DESIGN §7–§8 with the real CLI.
@Suite("CLI guidance")
struct CLIGuidanceTests {
    @Test("--home after the command is this device's home, not dropped; after -- every argument is text")
    func globalOptionsAfterTheCommandAreHonoured() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        try await world.enroll("wim", role: "wmo-consulent")
        try await world.enroll("noor", role: "buurtcoach")
        let h = try await world.household(on: "wim", label: "Fam. Achteraan")

        // It used to run on FIELDCLI_HOME's store (here noor's) while the user named wim's.
        let status = await world.cli(nil, ["status", "--home", world.home("wim").path],
                                     environment: ["FIELDCLI_HOME": world.home("noor").path])
        #expect(status.code == 0, "\(status.err)")
        #expect(status.out.contains("wim") && !status.out.contains("noor"))
        let written = await world.cli(nil, ["log", "add", h, "--purpose", "WMO", "--kind", "telefoon", "--home", world.home("wim").path,
                                            "--", "--home en --json zijn hier tekst (fictief)"],
                                      environment: ["FIELDCLI_HOME": world.home("noor").path])
        #expect(written.code == 0, "\(written.err)")
        #expect(!written.out.hasPrefix("{"), "--json after -- is text, not the option")
        let logs = await world.cli("wim", ["--json", "log", "list", h, "--purpose", "WMO"])
        #expect(logs.out.contains("--home en --json zijn hier tekst (fictief)"))
        #expect(await world.cli("noor", ["households"]).out.contains(String(h.prefix(8))) == false)
    }

    @Test("admin's --server and --token are read only when admin is the command: enroll --name admin keeps its own --server")
    func adminOptionsBelongToTheAdminCommand() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        #expect(await world.admin(["user", "add", "sam", "--role", "wmo-consulent"]).code == 0)
        let code = try await world.enrollmentCode("sam")
        let enrolled = await world.cli("sam", ["enroll", "--name", "admin", "--server", world.url, "--code", code])
        #expect(enrolled.code == 0, "\(enrolled.err)")
        #expect(await world.cli("sam", ["status"]).out.contains("sam"))
    }

    @Test("A missing home, a misspelt field and an unreachable server for an admin command each get advice that fits")
    func errorsNameTheFix() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        try await world.enroll("wim", role: "wmo-consulent")
        let h = try await world.household(on: "wim", label: "Fam. Spelling")

        let missing = await world.cli(nil, ["--home", world.root.appendingPathComponent("nergens/dieper").path, "status"])
        #expect(missing.code == 5)
        #expect(missing.err.contains("does not exist") && missing.err.contains("fieldcli enroll"), "\(missing.err)")
        #expect(!missing.err.contains("permissions"))

        let typo = await world.cli("wim", ["set", h, "wmo_reqest", "Hulp bij het huishouden (fictief)"])
        #expect(typo.code == 1)
        #expect(typo.err.contains("Did you mean wmo_request?"), "\(typo.err)")
        let unknown = await world.cli("wim", ["set", h, "zzz_onbekend", "x"])
        #expect(unknown.code == 1)
        #expect(unknown.err.contains("Fields you may write here:") && unknown.err.contains("wmo_request") && unknown.err.contains("label"),
                "\(unknown.err)")
        #expect(!unknown.err.contains("wgs_notes"), "a WGS field is not the Wmo consulent's to write")
        #expect(await world.cli("wim", ["--json", "status"]).out.contains("\"pending\" : 0"), "nothing was queued by the refused writes")

        // A visit time with its offset, as a Dutch laptop would write it, is kept as that instant.
        #expect(await world.cli("wim", ["log", "add", h, "--purpose", "WMO", "--kind", "huisbezoek", "--at", "2026-11-30T10:00+01:00",
                                        "Huisbezoek (fictief)."]).code == 0)
        #expect(await world.cli("wim", ["--json", "log", "list", h, "--purpose", "WMO"]).out.contains("2026-11-30T09:00:00Z"))

        let unreachable = await world.cli(nil, ["admin", "--server", "http://127.0.0.1:1", "--token", "x", "user", "list"])
        #expect(unreachable.code == 3)
        #expect(unreachable.err.contains("run the command again") && !unreachable.err.contains("pending changes"), "\(unreachable.err)")
    }

    @Test("show of a purpose the device does not hold says so; rejected says what to do about each reason")
    func emptyAndRejectedViewsExplainThemselves() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        try await world.enroll("noor", role: "buurtcoach")
        let h = try await world.household(on: "noor", label: "Fam. Leesrecht")
        let notHeld = await world.cli("noor", ["show", h, "--purpose", "WGS"])
        #expect(notHeld.code == 0)
        #expect(notHeld.out.contains("Nothing of WGS is on this device"), "\(notHeld.out)")
        let notShown = try JSONSerialization.jsonObject(with: Data(await world.cli("noor", ["--json", "show", h, "--purpose", "WGS"]).out.utf8))
        #expect((notShown as? [String: Any])?["notShown"] as? [String] == ["WGS"])

        // Written with a write grant, which becomes read-only before the sync: the server rejects it.
        #expect(await world.admin(["grant", "noor", "WMO", "--write", "--household", h]).code == 0)
        #expect(await world.cli("noor", ["sync"]).code == 0)
        #expect(await world.cli("noor", ["set", h, "wmo_request", "Begeleiding (fictief)"]).code == 0)
        #expect(await world.admin(["revoke-grant", "noor", "WMO", "--household", h]).code == 0)
        #expect(await world.admin(["grant", "noor", "WMO", "--read", "--household", h]).code == 0)
        #expect(await world.cli("noor", ["sync"]).code == 4)
        let rejected = await world.cli("noor", ["rejected"])
        #expect(rejected.out.contains("readOnly: You may read this purpose but not write it."), "\(rejected.out)")
        #expect(rejected.out.contains("fieldcli rejected --discard ID"))
        // What the change wrote is shown, so that it can be written again: the device holds the only copy.
        #expect(rejected.out.contains("Begeleiding (fictief)"), "\(rejected.out)")
        let listed = try JSONSerialization.jsonObject(with: Data(await world.cli("noor", ["--json", "rejected"]).out.utf8)) as? [[String: Any]]
        #expect(listed?.first?["text"] as? String == "Begeleiding (fictief)")
    }

    @Test("admin device revoke takes a device name with spaces, as the help says")
    func aDeviceIsRevokedByItsName() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        #expect(await world.admin(["user", "add", "kim", "--role", "buurtcoach"]).code == 0)
        let code = try await world.enrollmentCode("kim")
        #expect(await world.cli("kim", ["enroll", "--server", world.url, "--code", code, "--name", "laptop van kim"]).code == 0)
        let revoked = await world.admin(["device", "revoke", "laptop van kim"])
        #expect(revoked.code == 0, "\(revoked.err)")
        let devices = try world.json([AdminAPI.DeviceInfo].self, await world.admin(["--json", "device", "list"]))
        #expect(devices.map(\.revoked) == [true])
        #expect(await world.cli("kim", ["sync"]).code == 2)
    }

    @Test("fieldcli --json demo: the story on stderr, one JSON verdict on stdout, every check held")
    func theDemoRunsAndReportsInJSON() async throws {
        let sink = OutputSink.capturing()
        let code = await FieldCLIEntry.run(["--json", "demo"], environment: [:], output: sink)
        #expect(code == 0, "\(sink.stderr)")
        struct Verdict: Decodable {
            struct Check: Decodable {
                var claim: String
                var held: Bool
            }
            var passed: Bool
            var checks: [Check]
        }
        let verdict = try JSONDecoder().decode(Verdict.self, from: Data(sink.stdout.utf8))
        #expect(verdict.passed)
        #expect(verdict.checks.count >= 15 && verdict.checks.allSatisfy(\.held), "\(verdict.checks.filter { !$0.held }.map(\.claim))")
        #expect(sink.stderr.contains("Demo finished: every check held."))
    }

    @Test("enroll --force keeps a home that holds unsynced changes unless told to discard them; the code is not used up by the refusal")
    func reEnrollingDoesNotQuietlyDropUnsyncedWork() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        try await world.enroll("wim", role: "wmo-consulent")
        let h = try await world.household(on: "wim", label: "Fam. Opnieuw")
        #expect(await world.cli("wim", ["set", h, "wmo_request", "Notitie van vanmiddag (fictief)"]).code == 0)
        let code = try await world.enrollmentCode("wim")

        let refused = await world.cli("wim", ["enroll", "--force", "--server", world.url, "--code", code])
        #expect(refused.code == 1)
        #expect(refused.err.contains("1 change(s) that are not on the server") && refused.err.contains("--discard-unsynced"), "\(refused.err)")
        #expect(await world.cli("wim", ["--json", "status"]).out.contains("\"pending\" : 1"), "the store was left as it was")

        let replaced = await world.cli("wim", ["enroll", "--force", "--discard-unsynced", "--server", world.url, "--code", code])
        #expect(replaced.code == 0, "\(replaced.err)")
        #expect(await world.cli("wim", ["--json", "status"]).out.contains("\"pending\" : 0"))

        // A sealed key: rejected changes cannot be counted without the passphrase, and there is no prompt for it.
        let secret = ["FIELDCLI_NEW_PASSPHRASE": "correct horse battery"]
        #expect(await world.cli("wim", ["passphrase", "set"], environment: secret).code == 0)
        let next = try await world.enrollmentCode("wim")
        let sealed = await world.cli("wim", ["enroll", "--force", "--server", world.url, "--code", next])
        #expect(sealed.code == 1 && sealed.err.contains("cannot be counted without it"), "\(sealed.err)")
        let counted = await world.cli("wim", ["enroll", "--force", "--server", world.url, "--code", next],
                                      environment: ["FIELDCLI_PASSPHRASE": "correct horse battery"])
        #expect(counted.code == 0, "nothing unsynced, so with the passphrase the re-enrollment goes ahead: \(counted.err)")
    }

    @Test("a damaged local store is named as damaged, with the way back, not as a disk-space problem")
    func aDamagedLocalStoreSaysWhatToDo() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        try await world.enroll("wim", role: "wmo-consulent")
        let store = world.home("wim").appendingPathComponent("store.sqlite")
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: store.path + suffix) }
        try Data(repeating: 0x5A, count: 8_192).write(to: store)
        let result = await world.cli("wim", ["households"])
        #expect(result.code == 5)
        #expect(result.err.contains("is damaged") && result.err.contains("enroll --force"), "\(result.err)")
        #expect(!result.err.contains("disk space"), "\(result.err)")
    }

    @Test("small slips get a message that says what to do: an empty --home, enroll into a file, a URL that is not a FieldSync server, a contact that is a document")
    func smallSlipsAreNamed() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        let empty = await world.cli(nil, ["--home", "", "status"])
        #expect(empty.code == 1 && empty.err.contains("is empty"), "\(empty.err)")

        let file = world.root.appendingPathComponent("a-file")
        try Data("x".utf8).write(to: file)
        let intoFile = await world.cli(nil, ["--home", file.path, "enroll", "--server", world.url, "--code", "ABCD-EFGH"])
        #expect(intoFile.code == 1 && intoFile.err.contains("is a file, not a directory"), "\(intoFile.err)")

        let wrongPath = await world.cli(nil, ["admin", "--server", world.url + "/elders", "--token", world.adminToken, "user", "list"])
        #expect(wrongPath.code == 3 && wrongPath.err.contains("has no such endpoint") && wrongPath.err.contains("scheme, host and port only"),
                "\(wrongPath.err)")

        let long = await world.admin(["user", "add", "piet", "--role", "buurtcoach", "--contact", String(repeating: "06-12345678 ", count: 40)])
        #expect(long.code == 1 && long.err.contains("at most 200 characters"), "\(long.err)")
        #expect(try world.json([AdminAPI.UserInfo].self, await world.admin(["--json", "user", "list"])).map(\.name) == ["admin"])

        // Bytes that were not UTF-8 arrive repaired as U+FFFD: refused, not stored changed.
        let mangled = await world.cli("wim", ["household", "new", "--label", "Fam. Kern\u{FFFD}X"])
        #expect(mangled.code == 1 && mangled.err.contains("not valid UTF-8"), "\(mangled.err)")

        // What the admin asked for is already so: the input's doing (exit 1), not "other".
        let twice = await world.admin(["user", "add", "admin", "--role", "admin"])
        #expect(twice.code == 1 && twice.err.contains("already exists"), "\(twice.err)")
        try await world.enroll("wim", role: "wmo-consulent")
        let again = await world.cli("wim", ["enroll", "--server", world.url, "--code", "ABCD-EFGH"])
        #expect(again.code == 1 && again.err.contains("already enrolled"), "\(again.err)")
    }

    @Test("a worker whose account was disabled is told why the sync emptied the device")
    func aDisabledAccountIsExplained() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        try await world.enroll("wim", role: "wmo-consulent")
        let h = try await world.household(on: "wim", label: "Fam. Uitdienst")
        #expect(await world.cli("wim", ["sync"]).out.contains("no access") == false)
        #expect(await world.admin(["user", "disable", "wim"]).code == 0)
        let sync = await world.cli("wim", ["sync"])
        #expect(sync.code == 0, "\(sync.err)")
        #expect(sync.out.contains("The server gives your account no access now"), "\(sync.out)")
        #expect(!(await world.cli("wim", ["households"]).out.contains(String(h.prefix(8)))))
    }

    @Test("a sync that brings a policy requiring a device passphrase says so at once (exit 2); passphrase status needs no passphrase")
    func aNewPassphraseRequirementIsToldInTheSync() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        try await world.enroll("wim", role: "wmo-consulent")
        await world.stopServer()
        var policy = PolicyFile.defaultPolicy(schema: .defaultHouseholdPlan())
        policy.requireDevicePassphrase = true
        world.policy = policy
        try await world.restartServer()
        let sync = await world.cli("wim", ["--json", "sync"])
        #expect(sync.code == 2, "\(sync.err)")
        #expect(sync.out.contains("\"passphraseRequired\" : true"), "\(sync.out)")

        #expect(await world.cli("wim", ["passphrase", "set"], environment: ["FIELDCLI_NEW_PASSPHRASE": "lang genoeg geheim"]).code == 0)
        let status = await world.cli("wim", ["passphrase", "status"])
        #expect(status.code == 0 && status.out.contains("protected by a passphrase"), "\(status.err)")
        #expect(await world.cli("wim", ["sync"], environment: ["FIELDCLI_PASSPHRASE": "lang genoeg geheim"]).code == 0)
    }

    @Test("a time before 1970 is a usage error, not a crash; --corrects with the ID of a field value names the mistake")
    func timesBefore1970AndWrongCorrectionIDs() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        try await world.enroll("noor", role: "buurtcoach")
        let h = try await world.household(on: "noor", label: "Fam. Tijdreis (fictief)")
        let early = await world.cli("noor", ["log", "add", h, "--purpose", "REGIE", "--kind", "telefoon", "--at", "1969-12-31T23:59:59Z", "Gebeld"])
        #expect(early.code == 1, "\(early.err)")
        #expect(early.err.contains("from 1970 on"), "\(early.err)")
        let grant = await world.admin(["grant", "noor", "WMO", "--read", "--until", "1960-01-01"])
        #expect(grant.code == 1, "\(grant.err)")
        let withSeconds = await world.cli("noor", ["log", "add", h, "--purpose", "REGIE", "--kind", "telefoon", "--at", "2026-12-01T10:00:00", "Gebeld (fictief)"])
        #expect(withSeconds.code == 0, "\(withSeconds.err)")

        #expect(await world.cli("noor", ["set", h, "next_evaluation_date", "2027-02-01"]).code == 0)
        let shown = try world.json(ShownHousehold.self, await world.cli("noor", ["--json", "show", h, "--purpose", "REGIE"]))
        let valueID = try #require(shown.segments.flatMap(\.fields).first { $0.name == "next_evaluation_date" }?.values.first?.id)
        let wrong = await world.cli("noor", ["log", "add", h, "--purpose", "REGIE", "--kind", "telefoon", "--corrects", valueID, "Correctie"])
        #expect(wrong.code == 1, "\(wrong.err)")
        #expect(wrong.err.contains("There is no entry \(valueID)"), "\(wrong.err)")
    }

    @Test("a goal edited while removed is named with the command that settles it; goal keep settles it on every device")
    func aGoalEditedWhileRemovedIsKept() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        try await world.enroll("noor", role: "buurtcoach")
        try await world.enroll("piet", role: "buurtcoach")
        let h = try await world.household(on: "noor", label: "Fam. Doel (fictief)")
        #expect(await world.admin(["assign", "piet", h]).code == 0)
        let added = await world.cli("noor", ["--json", "goal", "add", h, "--purpose", "REGIE", "Werk zoeken (fictief)"])
        let goalID = try #require(try JSONDecoder().decode([String: String].self, from: Data(added.out.utf8))["goalID"])
        #expect(await world.cli("noor", ["sync"]).code == 0)
        #expect(await world.cli("piet", ["sync"]).code == 0)
        let notFlagged = await world.cli("piet", ["goal", "keep", h, goalID])
        #expect(notFlagged.code == 1, "nothing to keep yet: \(notFlagged.err)")

        // Offline, the same afternoon: Noor removes the goal, Piet marks it done.
        #expect(await world.cli("noor", ["goal", "remove", h, goalID]).code == 0)
        #expect(await world.cli("piet", ["goal", "done", h, goalID]).code == 0)
        _ = await world.cli("noor", ["sync"])
        _ = await world.cli("piet", ["sync"])
        _ = await world.cli("noor", ["sync"])
        let conflicts = await world.cli("piet", ["conflicts", h])
        #expect(conflicts.out.contains("editedWhileRemoved"), "\(conflicts.out)")
        #expect(conflicts.out.contains("fieldcli goal keep H ITEM"), "\(conflicts.out)")
        #expect(!conflicts.out.contains("fieldcli resolve H FIELD"), "no field is in conflict: \(conflicts.out)")

        let kept = await world.cli("piet", ["goal", "keep", h, goalID])
        #expect(kept.code == 0, "\(kept.err)")
        #expect(kept.out.contains("kept (done)"), "\(kept.out)")
        #expect(await world.cli("piet", ["sync"]).code == 0)
        #expect(await world.cli("noor", ["sync"]).code == 0)
        for worker in ["noor", "piet"] {
            #expect(await world.cli(worker, ["conflicts", h]).out.contains("No conflicts"), "\(worker)")
            #expect(await world.cli(worker, ["goal", "list", h]).out.contains("Werk zoeken (fictief)"), "\(worker)")
        }
    }

    @Test("a label with terminal escapes or a line break is shown harmlessly to a colleague; --json keeps it exactly")
    func typedTextCannotControlATerminal() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        try await world.enroll("noor", role: "buurtcoach")
        let label = "Fam. \u{1B}]0;overgenomen\u{07}Escape\u{202E}(fictief)\nnep-rij"
        let h = try await world.household(on: "noor", label: label)
        let listed = await world.cli("noor", ["households"])
        #expect(listed.code == 0)
        #expect(!listed.out.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 || $0.value == 0x202E }, "\(listed.out)")
        #expect(listed.out.contains("\u{FFFD}]0;overgenomen\u{FFFD}Escape"), "\(listed.out)")
        #expect(listed.out.split(separator: "\n").count == 2, "a header and one row: \(listed.out)")
        struct Entry: Decodable { var id: String; var label: String? }
        let entries = try world.json([Entry].self, await world.cli("noor", ["--json", "households"]))
        #expect(entries.first { $0.id == h }?.label == label)
    }

    @Test("admin grant --household and admin access name a household the server does not have, instead of acting on it")
    func unknownHouseholdsAreNamedToTheAdmin() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        try await world.enroll("noor", role: "buurtcoach")
        let unknown = "0a4e8c12-77f3-4b9d-8e21-5c6a9d0f1b32"
        let grant = await world.admin(["grant", "noor", "WMO", "--read", "--household", unknown])
        #expect(grant.code != 0)
        #expect(grant.err.contains("There is no household \(unknown)"), "\(grant.err)")
        let access = await world.admin(["access", unknown])
        #expect(access.code != 0)
        #expect(access.err.contains("There is no household \(unknown)"), "\(access.err)")
        let grants = await world.admin(["--json", "access", try await world.household(on: "noor", label: "Fam. Bestaat (fictief)")])
        #expect(grants.code == 0, "a household that exists still works: \(grants.err)")
    }

    @Test("admin device revoke by ID revokes that device even when another is named after its ID; the audit row names the device revoked")
    func aDeviceIDWinsOverANameThatCopiesIt() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        try await world.enroll("noor", role: "buurtcoach")
        let noorDevice = try #require(try world.json([AdminAPI.DeviceInfo].self, await world.admin(["--json", "device", "list"])).first?.id)
        #expect(await world.admin(["user", "add", "piet", "--role", "buurtcoach"]).code == 0)
        let code = try await world.enrollmentCode("piet")
        #expect(await world.cli("piet", ["enroll", "--server", world.url, "--code", code, "--name", noorDevice]).code == 0)

        let revoked = await world.admin(["device", "revoke", noorDevice])
        #expect(revoked.code == 0, "\(revoked.err)")
        let devices = try world.json([AdminAPI.DeviceInfo].self, await world.admin(["--json", "device", "list"]))
        #expect(devices.first { $0.id == noorDevice }?.revoked == true)
        #expect(devices.first { $0.user == "piet" }?.revoked == false, "the device named after it stays")
        let audit = try world.json([AuditRecord].self, await world.admin(["--json", "audit"]))
        #expect(audit.contains { $0.action == "deviceRevoke" && $0.device == noorDevice })
    }

    @Test("an erasure also takes a worker's refused write of the erased segment off the device, with its text")
    func anErasureTakesRefusedWritesOffTheDevice() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        try await world.enroll("noor", role: "buurtcoach")
        try await world.enroll("sam", role: "wmo-consulent")
        let h = try await world.household(on: "noor", label: "Fam. Wissen (fictief)")
        #expect(await world.admin(["assign", "sam", h]).code == 0)
        #expect(await world.cli("sam", ["sync"]).code == 0)
        #expect(await world.cli("sam", ["set", h, "wmo_request", "Hulp bij het huishouden (fictief)"]).code == 0)
        #expect(await world.cli("sam", ["sync"]).code == 0)

        #expect(await world.admin(["grant", "noor", "WMO", "--write", "--household", h]).code == 0)
        #expect(await world.cli("noor", ["sync"]).code == 0)
        #expect(await world.cli("noor", ["set", h, "wmo_request", "Geweigerde aanvraag (fictief)"]).code == 0)
        #expect(await world.admin(["revoke-grant", "noor", "WMO", "--household", h]).code == 0)
        #expect(await world.admin(["grant", "noor", "WMO", "--read", "--household", h]).code == 0)
        #expect(await world.cli("noor", ["sync"]).code == 4)
        #expect(await world.cli("noor", ["rejected"]).out.contains("Geweigerde aanvraag (fictief)"), "positive control")

        #expect(await world.admin(["erase", h, "--purpose", "WMO"]).code == 0)
        _ = await world.cli("noor", ["sync"])
        let rejected = await world.cli("noor", ["rejected"]).out
        #expect(!rejected.contains("Geweigerde aanvraag (fictief)"), "\(rejected)")
        #expect(!world.homeContains("noor", "Geweigerde aanvraag (fictief)"))
    }

    @Test("set H FIELD \"\" clears a date set by mistake, on every device; the regisseur cannot be emptied")
    func aFieldCanBeCleared() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        try await world.enroll("noor", role: "buurtcoach")
        let h = try await world.household(on: "noor", label: "Fam. Leeg (fictief)")
        #expect(await world.cli("noor", ["set", h, "next_evaluation_date", "2027-02-30"]).code == 1, "not a date")
        #expect(await world.cli("noor", ["set", h, "next_evaluation_date", "2027-02-03"]).code == 0)
        #expect(await world.cli("noor", ["sync"]).code == 0)
        let cleared = await world.cli("noor", ["set", h, "next_evaluation_date", ""])
        #expect(cleared.code == 0, "\(cleared.err)")
        #expect(await world.cli("noor", ["sync"]).code == 0)
        let shown = try world.json(ShownHousehold.self, await world.cli("noor", ["--json", "show", h, "--purpose", "REGIE"]))
        let date = try #require(shown.segments.flatMap(\.fields).first { $0.name == "next_evaluation_date" })
        #expect(date.value == "" && !date.conflict, "\(date)")
        #expect(await world.cli("noor", ["set", h, "regisseur", ""]).code == 1)
    }

    @Test("admin admin-token USER --revoke ends that admin's tokens (a leaked one), audited; one's own cannot be revoked")
    func anAdminTokenCanBeRevoked() async throws {
        let world = try await CLIWorld()
        defer { Task { await world.finish() } }
        #expect(await world.admin(["user", "add", "beheer", "--role", "admin"]).code == 0)
        let issued = await world.admin(["--json", "admin-token", "beheer"])
        let token = try #require(try JSONDecoder().decode([String: String].self, from: Data(issued.out.utf8))["token"])
        let asBeheer = ["admin", "--server", world.url, "--token", token]
        #expect(await world.cli(nil, asBeheer + ["user", "list"]).code == 0, "positive control: the token works")
        let own = await world.cli(nil, asBeheer + ["admin-token", "beheer", "--revoke"])
        #expect(own.code != 0 && own.err.contains("cannot revoke your own"), "\(own.err)")

        let revoked = await world.admin(["admin-token", "beheer", "--revoke"])
        #expect(revoked.code == 0, "\(revoked.err)")
        #expect(revoked.out.contains("Revoked 1 admin token(s) of beheer"), "\(revoked.out)")
        let refused = await world.cli(nil, asBeheer + ["user", "list"])
        #expect(refused.code != 0, "the revoked token is refused: \(refused.out)")
        let audit = try world.json([AuditRecord].self, await world.admin(["--json", "audit"]))
        #expect(audit.contains { $0.action == "adminTokenRevoke" && $0.detail == "user=beheer" && $0.count == 1 })
    }
}

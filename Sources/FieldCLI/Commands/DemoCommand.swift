import ArgumentParser
import Foundation
import Logging
import SyncCore
import SyncServer

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the end-to-end story: a real server on loopback, three devices, offline edits, a conflict, purpose binding.",
        discussion: "Uses a temporary directory and fictional data; exits 0 only if every check in the story held. With --json the story goes to stderr and stdout gets one JSON object: passed, checks (claim, held), kept.")

    @Flag(help: "Keep the temporary directory and print its path.") var keep = false

    struct Result: Encodable {
        struct Check: Encodable {
            var claim: String
            var held: Bool
        }
        var passed: Bool
        var checks: [Check]
        var kept: String?
    }

    func run() async throws {
        let context = CLIContext.current
        var story = DemoStory(output: context.output, keep: keep, narrateToStderr: context.json)
        let passed = try await story.run()
        if context.json {
            context.printJSON(Result(passed: passed, checks: story.checks.map { Result.Check(claim: $0.claim, held: $0.held) },
                                     kept: keep ? story.root.path : nil))
        }
        if !passed {
            var error = CLIError.other("The demo found a problem (see the checks above).")
            error.reported = context.json  // the JSON verdict already says so
            throw error
        }
    }
}

/// The demo of issue 5: every step runs the real CLI entry point against a
/// real server, and every claim is checked.
struct DemoStory {
    let output: OutputSink
    let keep: Bool
    /// `--json`: the story is for people, so it goes to stderr and stdout keeps the JSON.
    let narrateToStderr: Bool
    let root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("fieldsync-demo-\(UUID().uuidString.prefix(8))")
    private(set) var checks: [(claim: String, held: Bool)] = []
    private var failures: [String] { checks.filter { !$0.held }.map(\.claim) }

    init(output: OutputSink, keep: Bool, narrateToStderr: Bool = false) {
        self.output = output
        self.keep = keep
        self.narrateToStderr = narrateToStderr
    }

    private func say(_ text: String) { narrateToStderr ? output.err(text) : output.out(text) }

    /// Runs `fieldcli --home HOME args…` in process and returns (exit code, stdout, stderr).
    private func cli(_ home: URL?, _ arguments: [String], environment: [String: String] = [:]) async -> (Int32, String, String) {
        let sink = OutputSink.capturing()
        let args = (home.map { ["--home", $0.path] } ?? []) + arguments
        let code = await FieldCLIEntry.run(args, environment: environment, output: sink)
        return (code, sink.stdout, sink.stderr)
    }

    private mutating func check(_ condition: Bool, _ claim: String) {
        say(condition ? "   ✔ \(claim)" : "   ✘ \(claim)")
        checks.append((claim, condition))
    }

    mutating func run() async throws -> Bool {
        try FileSecurity.makePrivateDirectory(root)
        defer { if !keep { try? FileManager.default.removeItem(at: root) } }
        var logger = Logger(label: "fieldsyncd-demo")
        logger.logLevel = .error
        say("FieldSync demo — one household, one plan, one regisseur (all data is fictional)\n")
        say("1. Start a real fieldsyncd on a free loopback port (SQLite, synchronous=FULL).")
        let server = try await FieldSyncServer.start(ServerConfiguration(dataDirectory: root.appendingPathComponent("server"), port: 0, logger: logger))
        defer { Task { await server.stop() } }
        let url = server.baseURL.absoluteString
        guard let adminToken = server.adminToken else { throw CLIError.other("The demo server did not create an admin.") }
        let admin = ["admin", "--server", url, "--token", adminToken]
        say("   listening on \(url)")

        say("\n2. The admin adds three workers and enrolls a laptop for each.")
        let people = [("noor", "buurtcoach", "06-11111111"), ("sam", "wmo-consulent", "06-22222222"), ("lisa", "schuldhulp", "06-33333333")]
        var homes: [String: URL] = [:]
        for (name, role, contact) in people {
            let (added, _, addErr) = await cli(nil, admin + ["user", "add", name, "--role", role, "--contact", contact])
            let (_, codeOut, _) = await cli(nil, admin + ["--json", "enroll-code", name])
            let code = (try? JSONDecoder().decode(AdminAPI.EnrollmentCode.self, from: Data(codeOut.utf8)))?.code ?? ""
            let home = root.appendingPathComponent("home-\(name)")
            homes[name] = home
            let (enrolled, _, enrollErr) = await cli(home, ["enroll", "--server", url, "--code", code, "--name", "laptop-\(name)"])
            check(added == 0 && enrolled == 0, "\(name) (\(role)) enrolled\(added != 0 ? ": \(addErr)" : enrolled != 0 ? ": \(enrollErr)" : "")")
        }
        let noor = homes["noor"]!, sam = homes["sam"]!, lisa = homes["lisa"]!

        say("\n3. At a kitchen table with no signal, Noor (buurtcoach) starts a household plan offline.")
        let (_, created, _) = await cli(noor, ["household", "new", "--label", "Fam. Demo (fictief)"])
        let household = created.trimmingCharacters(in: .whitespacesAndNewlines)
        check(HouseholdID(household) != nil, "household \(household.prefix(8)) created offline")
        _ = await cli(noor, ["set", household, "regisseur", "noor"])
        _ = await cli(noor, ["goal", "add", household, "--purpose", "REGIE", "Weer grip op de post en de rekeningen"])
        let (noorSync, _, _) = await cli(noor, ["sync"])
        check(noorSync == 0, "Noor's laptop synced the new household")
        _ = await cli(nil, admin + ["assign", "sam", household])
        _ = await cli(nil, admin + ["assign", "lisa", household])
        say("   the admin assigns Sam (Wmo) and Lisa (schuldhulp) to the household")
        let (samFirst, _, _) = await cli(sam, ["sync"])
        let (lisaFirst, _, _) = await cli(lisa, ["sync"])
        check(samFirst == 0 && lisaFirst == 0, "Sam and Lisa received the shared plan (REGIE)")

        say("\n4. Offline, the same afternoon:")
        _ = await cli(noor, ["set", household, "next_evaluation_date", "2027-02-01"])
        say("   Noor sets the evaluation date to 2027-02-01")
        _ = await cli(sam, ["set", household, "next_evaluation_date", "2027-03-15"])
        say("   Sam sets the evaluation date to 2027-03-15 (the same field: a real conflict)")
        _ = await cli(sam, ["log", "add", household, "--purpose", "WMO", "--kind", "huisbezoek", "Keukentafelgesprek over huishoudelijke hulp (fictief)."])
        let secret = "Betalingsachterstand energie besproken, regeling gestart (fictief)."
        _ = await cli(lisa, ["log", "add", household, "--purpose", "WGS", "--kind", "huisbezoek", secret])
        say("   Lisa writes a WGS (schuldhulp) contact log that the Wmo consulent may not see")
        let (refused, _, refusedErr) = await cli(sam, ["set", household, "wgs_notes", "poging"])
        check(refused == 2 && refusedErr.contains("WGS"), "Sam's device refuses a write to a WGS field before queueing it (exit 2, names WGS)")

        say("\n5. Back in the office everybody syncs.")
        let (a, _, _) = await cli(noor, ["sync"])
        let (b, _, _) = await cli(sam, ["sync"])
        let (c, _, _) = await cli(lisa, ["sync"])
        let (d, _, _) = await cli(noor, ["sync"])
        say("   exit codes: noor \(a), sam \(b), lisa \(c), noor again \(d) (4 = a conflict needs attention)")
        let (_, noorConflicts, _) = await cli(noor, ["--json", "conflicts", household])
        let (_, samConflicts, _) = await cli(sam, ["--json", "conflicts", household])
        check(noorConflicts.contains("next_evaluation_date") && samConflicts.contains("next_evaluation_date"),
              "both devices show the conflict on next_evaluation_date with both values")
        let (_, shown, _) = await cli(sam, ["show", household])
        for line in shown.split(separator: "\n") where line.contains("CONFLICT") || line.contains("(noor,") || line.contains("(sam,") || line.contains("Also involved") || line.contains("— ") {
            say("   sam$ \(line.trimmingCharacters(in: .whitespaces))")
        }

        say("\n6. The admin inspects the conflict queue and resolves it.")
        let (_, queue, _) = await cli(nil, admin + ["--json", "conflicts", household])
        struct Entry: Decodable {
            var name: String
            var valueIDs: [String]
            var values: [ConflictValue]?
        }
        let entries = (try? JSONDecoder().decode([Entry].self, from: Data(queue.utf8))) ?? []
        let conflict = entries.first { $0.name == "next_evaluation_date" }
        check(conflict != nil && conflict?.values == nil, "the queue lists value IDs \(conflict?.valueIDs.joined(separator: ", ") ?? "") without showing values (no grant, no break-glass)")
        let noorValue = conflict?.valueIDs.first { $0.hasPrefix("\(self.replica(of: noor) ?? 0).") } ?? conflict?.valueIDs.first ?? ""
        let (resolved, resolveOut, _) = await cli(nil, admin + ["resolve", household, "next_evaluation_date", "--pick", noorValue])
        check(resolved == 0, "admin resolve --pick \(noorValue): \(resolveOut.trimmingCharacters(in: .whitespacesAndNewlines))")
        for home in [noor, sam, lisa] { _ = await cli(home, ["sync"]) }
        var remaining = 0
        for home in [noor, sam, lisa] {
            let (_, after, _) = await cli(home, ["--json", "conflicts", household])
            remaining += ((try? JSONSerialization.jsonObject(with: Data(after.utf8))) as? [Any])?.count ?? 1
        }
        check(remaining == 0, "after the next syncs no device shows the conflict")

        say("\n7. Purpose binding held end to end.")
        let (_, samExport, _) = await cli(sam, ["--json", "export", household])
        struct Export: Decodable {
            struct View: Decodable {
                struct Segment: Decodable { var purpose: String }
                var segments: [Segment]
            }
            var view: View
        }
        let exported = try? JSONDecoder().decode(Export.self, from: Data(samExport.utf8))
        check(exported != nil && !samExport.contains(secret) && !(exported?.view.segments.contains { $0.purpose == "WGS" } ?? true),
              "Sam's export holds no WGS segment and not the WGS text (purposes held: \(exported?.view.segments.map(\.purpose).joined(separator: ", ") ?? "?"))")
        check(!Self.filesContain(sam, secret), "Sam's home directory never received the WGS log (raw files searched)")
        let (_, lisaLogs, _) = await cli(lisa, ["log", "list", household, "--purpose", "WGS"])
        check(lisaLogs.contains("Betalingsachterstand"), "Lisa still sees her own WGS log")
        check(!Self.filesContain(lisa, secret), "on Lisa's laptop the log is stored encrypted (plain text not found in the raw files)")
        let (_, involved, _) = await cli(sam, ["show", household])
        check(involved.contains("lisa") && !involved.contains(secret), "Sam sees that Lisa is involved, not what she wrote")
        let (verified, verifyOut, _) = await cli(nil, admin + ["audit", "--verify"])
        check(verified == 0, verifyOut.trimmingCharacters(in: .whitespacesAndNewlines))

        await server.stop()
        say("")
        if failures.isEmpty {
            say("Demo finished: every check held.")
        } else {
            say("Demo finished with \(failures.count) failed check(s).")
        }
        if keep { say("Files kept in \(root.path)") }
        return failures.isEmpty
    }

    private func replica(of home: URL) -> UInt32? {
        (try? LocalStore(home: home, create: false))?.identityIfAny()?.replica
    }

    /// Searches every file in a directory for a text, as an attacker with the disk would.
    static func filesContain(_ directory: URL, _ text: String) -> Bool {
        let needle = Data(text.utf8)
        let files = (try? FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)) ?? []
        return files.contains { (try? Data(contentsOf: $0))?.range(of: needle) != nil }
    }
}

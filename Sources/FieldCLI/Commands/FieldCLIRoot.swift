import ArgumentParser
public import Foundation
import SyncServer

/// `fieldcli`: the field worker's and admin's command line (DESIGN §7–§8).
struct FieldCLIRoot: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fieldcli",
        abstract: "Offline-first household plans and contact logs, synced with a FieldSync server.",
        discussion: """
            Every command except enroll, sync and admin works without a network.

            Global options: fieldcli [--home DIR] [--json] COMMAND. They may also follow the command; after -- every argument is a value.

            Environment: FIELDCLI_HOME, FIELDSYNC_SERVER, FIELDSYNC_ADMIN_TOKEN, FIELDCLI_PASSPHRASE (device key passphrase).

            Exit codes: 0 ok, 1 usage error (fix the command as the message says), 2 refused by policy, 3 network or server unreachable, 4 conflicts or rejected ops need attention (sync), 5 other.
            """,
        subcommands: [
            EnrollCommand.self, HouseholdCommand.self, HouseholdsCommand.self, ShowCommand.self, SetCommand.self,
            LogCommand.self, GoalCommand.self, SyncCommand.self, StatusCommand.self, ConflictsCommand.self,
            ResolveCommand.self, RejectedCommand.self, ExportCommand.self, PassphraseCommand.self, AdminCommand.self, DemoCommand.self,
        ])

    @Option(name: .long, help: "Home directory of this device's store (default ~/.fieldcli; env FIELDCLI_HOME).")
    var home: String?

    @Flag(name: .long, help: "Print JSON with stable keys instead of tables.")
    var json = false
}

/// The entry point shared by the `fieldcli` binary, the demo and the tests.
public enum FieldCLIEntry {
    /// Runs one command line and returns its exit code. Output goes to `output`.
    public static func run(_ arguments: [String], environment: [String: String] = ProcessInfo.processInfo.environment,
                           output: OutputSink = .standard()) async -> Int32 {
        // Bytes that were not UTF-8 reach us as U+FFFD (the decoding repairs them): storing that would
        // quietly change what the worker typed, so say so instead.
        /// A usage error found before there is a home to work in.
        func refuse(_ message: String) -> Int32 {
            report(CLIError.usage(message), context: CLIContext(home: URL(fileURLWithPath: "/"), json: arguments.contains("--json"),
                                                                environment: environment, output: output))
            return CLIError.ExitCode.usage.rawValue
        }
        if let index = arguments.firstIndex(where: { $0.unicodeScalars.contains("\u{FFFD}") }) {
            return refuse("Argument \(index + 1) is not valid UTF-8 text (it has bytes shown as \u{FFFD}). "
                          + "Set the terminal to UTF-8 (e.g. LANG=nl_NL.UTF-8) and type it again.")
        }
        var rest: [String] = []
        var home = environment["FIELDCLI_HOME"].flatMap { $0.isEmpty ? nil : $0 }  // an empty variable means unset
        var json = false
        var index = 0
        // Global options are read wherever they stand, up to a `--` (after it
        // every argument is a value): `--home` after the command used to be
        // parsed and dropped, so the command ran on another device's store.
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--" {
                rest += arguments[index...]
                break
            }
            if argument == "--home", index + 1 < arguments.count {
                home = arguments[index + 1]
                index += 2
                continue
            }
            if argument.hasPrefix("--home=") {
                home = String(argument.dropFirst(7))
                index += 1
                continue
            }
            if argument == "--json" {
                json = true
                index += 1
                continue
            }
            rest.append(argument)
            index += 1
        }
        // `admin --server URL --token T …`: the options of the admin group, read wherever they
        // stand, but only when admin is the command (`enroll --name admin --server …` keeps its own).
        var adminServer: String?
        var adminToken: String?
        if let commandIndex = rest.firstIndex(where: { !$0.hasPrefix("-") }), rest[commandIndex] == "admin" {
            var kept = Array(rest[...commandIndex])
            var position = commandIndex + 1
            while position < rest.count {
                let argument = rest[position]
                if argument == "--" {
                    kept += rest[position...]
                    break
                }
                if (argument == "--server" || argument == "--token"), position + 1 < rest.count {
                    if argument == "--server" { adminServer = rest[position + 1] } else { adminToken = rest[position + 1] }
                    position += 2
                    continue
                }
                if argument.hasPrefix("--server=") { adminServer = String(argument.dropFirst(9)); position += 1; continue }
                if argument.hasPrefix("--token=") { adminToken = String(argument.dropFirst(8)); position += 1; continue }
                kept.append(argument)
                position += 1
            }
            rest = kept
        }
        if let home, home.trimmingCharacters(in: .whitespaces).isEmpty {
            return refuse("--home is empty. Give this device's home directory, e.g. --home ~/.fieldcli.")  // it would mean the current directory
        }
        let homeURL = home.map { URL(fileURLWithPath: ($0 as NSString).expandingTildeInPath) }
            ?? URL(fileURLWithPath: NSHomeDirectory()).appendingPathComponent(".fieldcli")
        var context = CLIContext(home: homeURL, json: json, environment: environment, output: output)
        context.adminServer = adminServer ?? environment["FIELDSYNC_SERVER"]
        context.adminToken = adminToken ?? environment["FIELDSYNC_ADMIN_TOKEN"]
        return await CLIContext.$current.withValue(context) {
            do {
                var command = try FieldCLIRoot.parseAsRoot(rest)
                if var async = command as? any AsyncParsableCommand {
                    try await async.run()
                } else {
                    try command.run()
                }
                return 0
            } catch let error as CLIError {
                report(error, context: context)
                return error.exitCode.rawValue
            } catch where DamagedStore.isDamage(error) {
                // Found past the open (a page deep in the file): the same advice as at the open.
                let damaged = LocalStore.damaged(homeURL.appendingPathComponent(LocalStore.databaseName), error)
                report(damaged, context: context)
                return damaged.exitCode.rawValue
            } catch {
                let code = FieldCLIRoot.exitCode(for: error)
                let message = FieldCLIRoot.fullMessage(for: error)
                if code == .success {
                    if !message.isEmpty { output.out(message) }
                    return 0
                }
                if code != .validationFailure && !(error is ValidationError) {
                    // Not a usage error: a store or file problem. Exit 5, and say what to do.
                    report(CLIError(.other, "\(message.isEmpty ? String(describing: type(of: error)) : message). Nothing was changed by this command; if it persists, check disk space and permissions of the home directory."),
                           context: context)
                    return CLIError.ExitCode.other.rawValue
                }
                if context.json {
                    context.printJSON(["error": ["code": "usage", "message": message]])
                } else {
                    output.err(message)
                }
                return code == .validationFailure ? 1 : code.rawValue
            }
        }
    }

    static func report(_ error: CLIError, context: CLIContext) {
        if error.reported { return }
        if context.json {
            context.printJSON(["error": ["code": error.code, "message": error.message]])
        } else {
            context.output.err("fieldcli: \(error.message)")
        }
    }
}

/// Parses `--at`/`--until` style times, with a usage error that shows the forms.
/// A date alone given to `--until` means the end of that day.
func parseTime(_ text: String, option: String) throws -> UInt64 {
    guard let value = TimeText.parse(text) else {
        throw ValidationError("\(option) takes a time like 2026-03-01, 2026-03-01T14:30 (this computer's time zone), 2026-03-01T14:30+01:00 or 2026-03-01T14:30:00Z, from 1970 on.")
    }
    if option == "--until", text.count == 10 { return value + 86_400_000 }
    return value
}

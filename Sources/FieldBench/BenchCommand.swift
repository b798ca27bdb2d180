public import ArgumentParser
import Foundation

/// `fieldbench`: FieldSync's benchmarks (DESIGN §9). Each prints one JSON object on stdout.
public struct BenchCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "fieldbench",
        abstract: "Benchmarks: trace replay, server load, bootstrap, wire size. Build with -c release for real figures.",
        subcommands: [ReplayCommand.self, LoadCommand.self, BootstrapCommand.self, MicroCommand.self])

    public init() {}

    struct ReplayCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "replay",
            abstract: "Replay a gen_trace.py trace through SyncCore's CRDTs, messages and codec; prints one JSON object.",
            discussion: "Exit status 1 if the copies do not converge or the contact-log digest differs.")

        @Argument(help: "A trace from shared/bench/gen_trace.py (.jsonl or .jsonl.gz).") var trace: String
        @Option(help: "Run N times, each in a fresh process, and report medians.") var `repeat` = 1
        @Flag(help: "CI mode: fail unless converged and digest_ok (use a small trace).") var check = false

        func run() async throws {
            // Repeats run in fresh processes: a second run in the same process
            // inherits the first one's fragmented heap and runs ≈ 15 % slower.
            let results = `repeat` > 1 ? try (0..<`repeat`).map { _ in try Replay.runInChildProcess(path: trace) }
                                       : [try Replay.run(path: trace)]
            let result = Replay.median(results)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
            if !result.converged || !result.digest_ok { throw ExitCode(1) }
        }
    }
}

struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Start a real fieldsyncd and N devices syncing home visits over HTTP; report throughput and latency.",
        discussion: "--rate R offers R syncs/s in total, open loop (Poisson per device, latency from the scheduled time); --rate max runs closed loop.")

    @Option(help: "Number of enrolled devices.") var devices = 200
    @Option(help: "Offered syncs per second in total, or 'max'.") var rate = "500"
    @Option(help: "How long to offer load.") var seconds = 10.0

    func validate() throws {
        if rate != "max", Double(rate).map({ $0 <= 0 }) ?? true { throw ValidationError("--rate takes a positive number or 'max'.") }
        if devices < 1 { throw ValidationError("--devices must be at least 1.") }
        if seconds <= 0 || seconds > 600 { throw ValidationError("--seconds must be between 0 and 600.") }
    }

    func run() async throws {
        let result = try await LoadBench.run(devices: devices, rate: rate == "max" ? nil : Double(rate), seconds: seconds)
        printJSON(result)
        if result.lost > 0 || !result.audit_ok { throw ExitCode(1) }
    }
}

struct BootstrapCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bootstrap",
        abstract: "A new device pulls 200 households with ~100 ops each from a real server; also one home visit's wire size.")

    @Option(help: "Households to pull.") var households = 200
    @Option(help: "Ops of history per household.") var ops = 100

    func run() async throws {
        let result = try await BootstrapBench.run(households: households, opsPerHousehold: ops)
        printJSON(result)
        if !result.converged { throw ExitCode(1) }
    }
}

func printJSON<T: Encodable>(_ value: T) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    print(String(decoding: (try? encoder.encode(value)) ?? Data(), as: UTF8.self))
}

extension Replay {
    /// Medians of the timing and size figures over repeated runs.
    static func median(_ results: [Result]) -> Result {
        guard results.count > 1 else { return results[0] }
        func mid(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        var out = results[0]
        out.total_s = mid(results.map(\.total_s))
        out.edit_s = mid(results.map(\.edit_s))
        out.encode_s = mid(results.map(\.encode_s))
        out.server_apply_s = mid(results.map(\.server_apply_s))
        out.client_apply_s = mid(results.map(\.client_apply_s))
        out.server_decode_s = mid(results.map(\.server_decode_s))
        out.server_merge_s = mid(results.map(\.server_merge_s))
        out.server_pull_s = mid(results.map(\.server_pull_s))
        out.client_decode_s = mid(results.map(\.client_decode_s))
        out.client_merge_s = mid(results.map(\.client_merge_s))
        out.peak_rss_mb = mid(results.map(\.peak_rss_mb))
        out.rss_after_load_mb = mid(results.map(\.rss_after_load_mb))
        out.converged = results.allSatisfy(\.converged)
        out.digest_ok = results.allSatisfy(\.digest_ok)
        return out
    }
}

extension Replay {
    /// One replay in a child `fieldbench replay` process, for its JSON result.
    static func runInChildProcess(path: String) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        process.arguments = ["replay", path]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard let result = try? JSONDecoder().decode(Result.self, from: data) else {
            throw BenchError("a replay run failed (exit \(process.terminationStatus)); run it alone to see why: fieldbench replay \(path)")
        }
        return result
    }
}

extension BenchCommand {
    /// The `fieldbench` entry point.
    public static func runMain(_ arguments: [String]) async -> Int32 {
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            return 0
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if !message.isEmpty { FileHandle.standardError.write(Data((message + "\n").utf8)) }
            return code.rawValue
        }
    }
}

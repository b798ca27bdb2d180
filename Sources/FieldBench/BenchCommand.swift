public import ArgumentParser
import Foundation

/// `fieldbench`: FieldSync's benchmarks (DESIGN §9). Each prints one JSON object on stdout.
public struct BenchCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "fieldbench",
        abstract: "Benchmarks: trace replay, server load, bootstrap, wire size. Build with -c release for real figures.",
        subcommands: [ReplayCommand.self])

    public init() {}

    struct ReplayCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "replay",
            abstract: "Replay a gen_trace.py trace through SyncCore's CRDTs, messages and codec; prints one JSON object.",
            discussion: "Exit status 1 if the copies do not converge or the contact-log digest differs.")

        @Argument(help: "A trace from shared/bench/gen_trace.py (.jsonl or .jsonl.gz).") var trace: String
        @Option(help: "Run N times and report medians.") var `repeat` = 1
        @Flag(help: "CI mode: fail unless converged and digest_ok (use a small trace).") var check = false

        func run() async throws {
            var results: [Replay.Result] = []
            for _ in 0..<max(1, `repeat`) { results.append(try Replay.run(path: trace)) }
            let result = Replay.median(results)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
            if !result.converged || !result.digest_ok { throw ExitCode(1) }
        }
    }
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
        out.peak_rss_mb = results.map(\.peak_rss_mb).max() ?? 0
        out.converged = results.allSatisfy(\.converged)
        out.digest_ok = results.allSatisfy(\.digest_ok)
        return out
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

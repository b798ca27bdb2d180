@testable import FieldBench
import Foundation
import Testing

/// `fieldbench replay --check` on a small trace generated here with the
/// repository's copy of gen_trace.py (issue 6): the replay must converge and
/// match the generator's contact-log digest.
struct BenchCheckTests {
    static var packageRoot: URL { URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent() }

    @Test func smallTraceConvergesWithTheDigest() throws {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("bench-check-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let trace = directory.appendingPathComponent("small.jsonl")
        let generator = Process()
        generator.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        generator.arguments = ["python3", Self.packageRoot.appendingPathComponent("bench/gen_trace.py").path,
                               "--households", "50", "--replicas", "6", "--steps", "3000", "--out", trace.path]
        generator.standardError = FileHandle.nullDevice
        try generator.run()
        generator.waitUntilExit()
        try #require(generator.terminationStatus == 0, "gen_trace.py failed (is python3 installed?)")
        let result = try Replay.run(path: trace.path)
        #expect(result.converged, "diverged copies: \(result.diverged_copies)")
        #expect(result.digest_ok)
        #expect(result.contactlog_entries == 755)
        #expect(result.rejected_ops == 0)
        #expect(result.bytes_up > 0 && result.bytes_up_compressed < result.bytes_up)
    }
}

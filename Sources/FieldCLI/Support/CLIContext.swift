public import Foundation
import Synchronization

/// Where a command writes: the process's stdout/stderr, or memory (tests run
/// the real entry point and read what it printed).
public final class OutputSink: Sendable {
    private let captured = Mutex<(out: String, err: String)>(("", ""))
    private let capture: Bool
    /// Whether stderr is a terminal (progress is shown only then).
    public let stderrIsTerminal: Bool
    /// Whether a person can be asked for a passphrase (stdin and stderr are terminals).
    public let canPrompt: Bool

    private init(capture: Bool, stderrIsTerminal: Bool, canPrompt: Bool) {
        self.capture = capture
        self.stderrIsTerminal = stderrIsTerminal
        self.canPrompt = canPrompt
    }

    public static func standard() -> OutputSink {
        OutputSink(capture: false, stderrIsTerminal: isatty(2) == 1, canPrompt: isatty(0) == 1 && isatty(2) == 1)
    }
    public static func capturing() -> OutputSink { OutputSink(capture: true, stderrIsTerminal: false, canPrompt: false) }

    /// Human output: text another worker typed is made safe for a terminal (`TerminalText`).
    public func out(_ text: String) { writeOut(TerminalText.safe(text) + "\n") }

    /// JSON output, whose encoder already escapes control characters; written as it is.
    func outJSON(_ text: String) { writeOut(text + "\n") }

    /// A progress line on stderr, drawn over the one before (`\r`): the program's own text, so the
    /// carriage return is not made safe like the rest.
    func progress(_ text: String) { writeErr("\r" + TerminalText.safe(text)) }

    public func err(_ text: String, newline: Bool = true) {
        let text = TerminalText.safe(text)
        writeErr(newline ? text + "\n" : text)
    }

    private func writeOut(_ text: String) {
        if capture { captured.withLock { $0.out += text } } else { FileHandle.standardOutput.write(Data(text.utf8)) }
    }

    private func writeErr(_ text: String) {
        if capture { captured.withLock { $0.err += text } } else { FileHandle.standardError.write(Data(text.utf8)) }
    }

    public var stdout: String { captured.withLock { $0.out } }
    public var stderr: String { captured.withLock { $0.err } }
}

/// What every command sees: the home directory, output mode and environment
/// (DESIGN §7). Passed as a task-local so commands stay plain ParsableCommands.
public struct CLIContext: Sendable {
    public var home: URL
    public var json: Bool
    public var environment: [String: String]
    public var output: OutputSink
    /// `admin --server/--token`, lifted out of the arguments by the entry point.
    public var adminServer: String?
    public var adminToken: String?

    @TaskLocal static var current = CLIContext(home: URL(fileURLWithPath: NSHomeDirectory()).appendingPathComponent(".fieldcli"),
                                               json: false, environment: [:], output: .standard())

    /// Wall clock in milliseconds; `FIELDCLI_NOW_MS` overrides it (for tests of expiry and skew).
    var now: UInt64 {
        if let fixed = environment["FIELDCLI_NOW_MS"].flatMap(UInt64.init) { return fixed }
        return UInt64(Date().timeIntervalSince1970 * 1000)
    }

    func print(_ text: String) { output.out(text) }

    /// Prints an Encodable as pretty, sorted JSON.
    func printJSON<T: Encodable>(_ value: T) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        output.outJSON(String(decoding: data, as: UTF8.self))
    }

    /// Prints JSON when `--json` was given, else the human form.
    func emit<T: Encodable>(_ value: T, human: () -> String) {
        if json { printJSON(value) } else { output.out(human()) }
    }
}

/// Text for a terminal. Labels, values and log entries are typed by colleagues on other
/// devices: a control character (other than a line break or tab) or a bidirectional override in
/// them could move the cursor, retitle the window, hide lines or reorder what is shown. Each is
/// shown as U+FFFD instead; JSON output escapes them itself and is left alone.
enum TerminalText {
    static func safe(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isUnsafe) else { return text }
        var result = String.UnicodeScalarView()
        for scalar in text.unicodeScalars { result.append(isUnsafe(scalar) ? "\u{FFFD}" : scalar) }
        return String(result)
    }

    private static func isUnsafe(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x0A, 0x09: return false
        case 0x00...0x1F, 0x7F...0x9F: return true
        case 0x202A...0x202E, 0x2066...0x2069: return true  // bidirectional embeddings, overrides, isolates
        default: return false
        }
    }
}

/// Formats rows as a short aligned table (DESIGN §7: human output is short tables).
enum Table {
    static func render(_ header: [String], _ rows: [[String]]) -> String {
        guard !rows.isEmpty else { return "" }
        // A line break inside a cell would start a row of its own.
        let rows = rows.map { $0.map { $0.replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\r", with: " ") } }
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }
}

enum TimeText {
    static func iso(_ milliseconds: UInt64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }

    /// Parses `2026-03-01`, `2026-03-01T10:30` or `2026-03-01T10:30:00` (this machine's time zone),
    /// `2026-03-01T10:30+01:00`, or a full ISO 8601 time. Nil for a time before 1970: stamps are
    /// unsigned milliseconds since then.
    static func parse(_ text: String) -> UInt64? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: text) { return milliseconds(date) }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return milliseconds(date) }
        for pattern in ["yyyy-MM-dd'T'HH:mmXXXXX", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd"] {
            let parser = DateFormatter()
            parser.locale = Locale(identifier: "en_US_POSIX")
            parser.timeZone = TimeZone.current
            parser.dateFormat = pattern
            if let date = parser.date(from: text) { return milliseconds(date) }
        }
        return nil
    }

    private static func milliseconds(_ date: Date) -> UInt64? {
        let value = (date.timeIntervalSince1970 * 1000).rounded()
        return value >= 0 && value < Double(UInt64.max) ? UInt64(value) : nil
    }
}

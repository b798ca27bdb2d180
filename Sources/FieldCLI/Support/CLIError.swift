/// The error type of fieldcli: a message that says what to do, and the exit
/// code of DESIGN §8 (0 ok, 1 usage, 2 refused by policy, 3 network/server
/// unreachable, 4 conflicts or rejected ops need attention, 5 other).
public struct CLIError: Error, Sendable, CustomStringConvertible {
    public struct ExitCode: RawRepresentable, Hashable, Sendable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        public static let ok = ExitCode(rawValue: 0)
        public static let usage = ExitCode(rawValue: 1)
        public static let refused = ExitCode(rawValue: 2)
        public static let network = ExitCode(rawValue: 3)
        public static let attention = ExitCode(rawValue: 4)
        public static let other = ExitCode(rawValue: 5)
    }

    public var exitCode: ExitCode
    public var message: String
    /// A stable code for `--json` output.
    public var code: String
    /// The command already printed its result (with --json), so the entry
    /// point must not print a second JSON document.
    public var reported = false

    public init(_ exitCode: ExitCode, _ message: String, code: String? = nil) {
        self.exitCode = exitCode
        self.message = message
        self.code = code ?? {
            switch exitCode {
            case .usage: return "usage"
            case .refused: return "refused"
            case .network: return "network"
            case .attention: return "attention"
            default: return "error"
            }
        }()
    }

    public var description: String { message }

    static func usage(_ message: String) -> CLIError { CLIError(.usage, message) }
    static func other(_ message: String) -> CLIError { CLIError(.other, message) }
}

/// The one error type of SyncCore (STYLE: an extensible code, a message for
/// humans that says what to do, no personal data).
public struct SyncCoreError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// A message ended before its declared content.
        public static let truncated = Code(rawValue: "truncated")
        /// A message's bytes do not form a valid message.
        public static let malformed = Code(rawValue: "malformed")
        /// A length or count exceeds what the decoder accepts.
        public static let tooLarge = Code(rawValue: "tooLarge")
        /// A message from a newer protocol version.
        public static let unsupportedVersion = Code(rawValue: "unsupportedVersion")
        /// A schema file is invalid.
        public static let invalidSchema = Code(rawValue: "invalidSchema")
        /// A policy file is invalid.
        public static let invalidPolicy = Code(rawValue: "invalidPolicy")
        /// A local edit was refused (policy or schema); see `refusal`.
        public static let refused = Code(rawValue: "refused")
        /// Something the caller asked for does not exist.
        public static let notFound = Code(rawValue: "notFound")
    }

    public var code: Code
    public var message: String
    /// The policy reason when `code == .refused`.
    public var refusal: RefusalReason?

    public init(_ code: Code, _ message: String, refusal: RefusalReason? = nil) {
        self.code = code
        self.message = message
        self.refusal = refusal
    }

    public var description: String { message }
}

public import HTTPTypes

/// The one error type of SyncServer (STYLE: an extensible code, a message for
/// humans that says what to do, never personal data). It maps to the JSON
/// error body `{"error": {"code", "message"}}` and an HTTP status.
public struct ServerError: Error, Sendable, CustomStringConvertible {
    public struct Code: RawRepresentable, Hashable, Sendable {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public static let badRequest = Code(rawValue: "badRequest")
        /// The body itself could not be read (not gzip, not the expected JSON): the client's fault, not its user's.
        public static let malformed = Code(rawValue: "malformed")
        public static let unauthorized = Code(rawValue: "unauthorized")
        public static let revoked = Code(rawValue: "revoked")
        public static let forbidden = Code(rawValue: "forbidden")
        public static let notFound = Code(rawValue: "notFound")
        public static let conflict = Code(rawValue: "conflict")
        public static let tooLarge = Code(rawValue: "tooLarge")
        public static let unsupportedMediaType = Code(rawValue: "unsupportedMediaType")
        public static let unsupportedVersion = Code(rawValue: "unsupportedVersion")
        public static let internalError = Code(rawValue: "internal")
        public static let unavailable = Code(rawValue: "unavailable")
    }

    public var code: Code
    public var message: String
    public var status: HTTPResponse.Status
    /// Extra JSON members of the error object (e.g. `purge: "all"`).
    public var extra: [String: String]
    public var underlying: (any Error)?

    public init(_ code: Code, _ message: String, status: HTTPResponse.Status, extra: [String: String] = [:],
                underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.status = status
        self.extra = extra
        self.underlying = underlying
    }

    public var description: String { "\(code.rawValue): \(message)" }

    static func badRequest(_ message: String) -> ServerError { ServerError(.badRequest, message, status: .badRequest) }
    static func notFound(_ message: String) -> ServerError { ServerError(.notFound, message, status: .notFound) }
    static func unauthorized() -> ServerError {
        ServerError(.unauthorized, "Missing or unknown token. Send 'Authorization: Bearer TOKEN'; enroll the device again if its token was lost.",
                    status: .unauthorized)
    }
}

import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import SyncCore
import SyncServer

/// HTTP to fieldsyncd over URLSession: bearer tokens, gzip over 1 KiB both
/// ways, and errors turned into CLI exit codes (3 for an unreachable server).
struct HTTPClient: Sendable {
    let base: URL
    let token: String?
    let timeout: TimeInterval
    /// What an unreachable server means for this command, said after the reason.
    let unreachableAdvice: String

    /// The advice for commands that only ask the server (admin, enroll): a sync's differs.
    static let retryAdvice = "Check the server URL and the connection, then run the command again."
    static let syncAdvice = "Nothing was lost: pending changes stay on this device; sync again when there is a connection."

    init(server: String, token: String?, timeout: TimeInterval = 10, unreachableAdvice: String = HTTPClient.retryAdvice) throws {
        guard let url = URL(string: server), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            throw CLIError.usage("\(server) is not a server URL. Give one like https://sync.gemeente.nl or http://127.0.0.1:8080.")
        }
        base = url
        self.token = token
        self.timeout = timeout
        self.unreachableAdvice = unreachableAdvice
    }

    struct Reply: Sendable {
        var status: Int
        var body: [UInt8]
    }

    /// Sends one request; never retries (the caller decides).
    func send(_ method: String, _ path: String, body: [UInt8]? = nil, contentType: String = "application/json",
              query: [String: String] = [:]) async throws -> Reply {
        var components = URLComponents(url: base.appendingPathComponent(path), resolvingAgainstBaseURL: false)!
        if !query.isEmpty { components.queryItems = query.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) } }
        var request = URLRequest(url: components.url!, timeoutInterval: timeout)
        request.httpMethod = method
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        request.setValue("gzip", forHTTPHeaderField: "Accept-Encoding")
        if let body {
            request.setValue(contentType, forHTTPHeaderField: "Content-Type")
            if body.count > Gzip.threshold {
                request.setValue("gzip", forHTTPHeaderField: "Content-Encoding")
                request.httpBody = Data(Gzip.compress(body))
            } else {
                request.httpBody = Data(body)
            }
        }
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.timeoutIntervalForResource = max(timeout * 6, 60)
        let session = URLSession(configuration: configuration)
        defer { session.finishTasksAndInvalidate() }
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await session.data(for: request)
        } catch {
            throw CLIError(.network, "Cannot reach the server at \(base.absoluteString) (\(Self.describe(error))). \(unreachableAdvice)")
        }
        guard let http = response as? HTTPURLResponse else { throw CLIError(.network, "The server sent no HTTP response.") }
        var bytes = Array(data)
        // URLSession may or may not have inflated the body already.
        if bytes.count >= 2, bytes[0] == 0x1F, bytes[1] == 0x8B {
            bytes = (try? Gzip.decompress(bytes, limit: 512 << 20)) ?? bytes
        }
        return Reply(status: http.statusCode, body: bytes)
    }

    private static func describe(_ error: any Error) -> String {
        let ns = error as NSError
        switch ns.code {
        case NSURLErrorTimedOut: return "timed out"
        case NSURLErrorCannotConnectToHost: return "connection refused"
        case NSURLErrorCannotFindHost, NSURLErrorDNSLookupFailed: return "host not found"
        case NSURLErrorNotConnectedToInternet, NSURLErrorNetworkConnectionLost: return "no network"
        default: return "network error \(ns.code)"
        }
    }

    /// The server's JSON error, as a CLI error with the right exit code. An
    /// admin command's 400 or 404 answers what the admin typed (an unknown
    /// user, role or household): a usage error. A sync's is not the user's
    /// doing, nor is a body the server could not read (`malformed`) or a
    /// protocol version it does not speak.
    static func failure(_ reply: Reply, action: String, badRequestIsUsage: Bool = true) -> CLIError {
        struct Envelope: Decodable {
            struct Body: Decodable {
                var code: String
                var message: String
            }
            var error: Body
        }
        let parsed = try? JSONDecoder().decode(Envelope.self, from: Data(reply.body))
        if parsed == nil, reply.status == 404 || reply.status == 405 {
            // FieldSync's own 404s carry its JSON error; a bare one means no such endpoint here:
            // the URL has a path, it is not a FieldSync server, or the server is older than this client.
            return CLIError(.network, "\(action): the server has no such endpoint (HTTP \(reply.status)). \(notFieldSyncAdvice) "
                            + "If it is right, the server may run an older FieldSync version than this client.", code: "noSuchEndpoint")
        }
        let message = parsed?.error.message ?? "HTTP \(reply.status)"
        let code = parsed?.error.code ?? "http\(reply.status)"
        switch reply.status {
        case 401, 403: return CLIError(.refused, "\(action): \(message)", code: code)
        case 400, 404, 409:
            // 409: what the admin asked for is already so (a user that exists, a code for a disabled user).
            let usersInput = badRequestIsUsage && code != "malformed" && code != "unsupportedVersion"
            return CLIError(usersInput ? .usage : .other, "\(action): \(message)", code: code)
        case 400..<500: return CLIError(.other, "\(action): \(message)", code: code)
        default: return CLIError(.network, "\(action): the server failed (\(message)). Try again later; nothing was lost.", code: code)
        }
    }

    /// A JSON call that decodes the reply or throws the server's error.
    func json<Response: Decodable>(_ method: String, _ path: String, body: (some Encodable)?, query: [String: String] = [:],
                                   action: String) async throws -> Response {
        let bytes = try body.map { Array(try JSONEncoder().encode($0)) }
        let reply = try await send(method, path, body: bytes, query: query)
        guard (200..<300).contains(reply.status) else { throw Self.failure(reply, action: action) }
        do {
            return try JSONDecoder().decode(Response.self, from: Data(reply.body))
        } catch {
            guard (try? JSONSerialization.jsonObject(with: Data(reply.body))) != nil else {
                throw CLIError(.network, "\(action): the answer was not JSON, so it did not come from a FieldSync server. \(Self.notFieldSyncAdvice)",
                               code: "notFieldSync")
            }
            throw CLIError.other("\(action): the server's answer was not understood. Are client and server the same version?")
        }
    }

    static let notFieldSyncAdvice = "Check the server URL: scheme, host and port only, e.g. https://sync.gemeente.nl or http://127.0.0.1:8080."
}

/// No request body.
struct NoBody: Encodable {}

import Logging
import HTTPTypes
import Foundation
import Hummingbird
import NIOCore
import SyncCore

/// Request and response plumbing shared by every route: bearer tokens,
/// bounded bodies with gzip, content negotiation, and the JSON error body
/// `{"error": {"code", "message"}}` (DESIGN §5).
enum HTTPSupport {
    static let binaryType = "application/x-fieldsync"
    static let jsonType = "application/json"

    static func bearer(_ request: Request) -> String? {
        guard let value = request.headers[.authorization], value.lowercased().hasPrefix("bearer ") else { return nil }
        let token = value.dropFirst(7).trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }

    /// Collects a body up to `limit` bytes, inflating gzip (bounded too).
    static func body(_ request: Request, limit: Int) async throws -> [UInt8] {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw ServerError(.tooLarge, "The request body is larger than this server accepts (\(limit) bytes). Send smaller chunks.",
                              status: .contentTooLarge, extra: ["maxBody": String(limit)])
        }
        let bytes = Array(buffer.readableBytesView)
        guard let encoding = request.headers[.contentEncoding]?.lowercased(), encoding != "identity" else { return bytes }
        guard encoding == "gzip" else {
            throw ServerError(.unsupportedMediaType, "Content-Encoding \(encoding) is not supported; use gzip or none.",
                              status: .unsupportedMediaType)
        }
        do {
            return try Gzip.decompress(bytes, limit: limit * 4)
        } catch let error as Gzip.DecompressionError {
            if error.tooLarge {
                throw ServerError(.tooLarge, "The request body inflates beyond what this server accepts.", status: .contentTooLarge)
            }
            throw ServerError(.malformed, "The request body is not valid gzip.", status: .badRequest)
        }
    }

    static func wantsJSON(_ request: Request) -> Bool {
        let type = request.headers[.contentType]?.lowercased() ?? ""
        return type.hasPrefix(jsonType)
    }

    static func decodeJSON<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        do {
            return try MessageJSON.decode(type, from: Data(bytes))
        } catch {
            throw ServerError(.malformed, error.message, status: .badRequest)
        }
    }

    static func response(bytes: [UInt8], contentType: String, request: Request, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        var body = bytes
        if bytes.count > Gzip.threshold, request.headers[.acceptEncoding]?.lowercased().contains("gzip") == true {
            body = Gzip.compress(bytes)
            headers[.contentEncoding] = "gzip"
        }
        headers[.contentLength] = String(body.count)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }

    static func json<T: Encodable>(_ value: T, request: Request, status: HTTPResponse.Status = .ok) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return response(bytes: Array(data), contentType: jsonType, request: request, status: status)
    }

    static func error(_ error: ServerError, request: Request) -> Response {
        var object: [String: String] = ["code": error.code.rawValue, "message": error.message]
        for (key, value) in error.extra { object[key] = value }
        return json(["error": object], request: request, status: error.status)
    }

    /// Runs a handler, turning every error into a clear JSON error response.
    /// Bad input is a 4xx; only a fault of ours is a 500, and it names no data.
    static func guarded(_ request: Request, context: some RequestContext, route: String, metrics: ServerMetrics,
                        _ body: () async throws -> Response) async -> Response {
        let response: Response
        do {
            response = try await body()
        } catch let error as ServerError {
            response = Self.error(error, request: request)
        } catch let error as SyncCoreError {
            let status: HTTPResponse.Status = error.code == .notFound ? .notFound : .badRequest
            response = Self.error(ServerError(ServerError.Code(rawValue: error.code.rawValue), error.message, status: status), request: request)
        } catch let error as DecodingError {
            _ = error
            response = Self.error(ServerError(.malformed, "The JSON body does not match the expected shape.", status: .badRequest),
                                  request: request)
        } catch {
            if DamagedStore.isDamage(error) {
                // Not a passing fault: every later request will meet the same pages. Say it once per request, loudly.
                metrics.recordStoreDamage()
                context.logger.critical("the database file is damaged; restore fieldsync.sqlite from backup", metadata: ["route": "\(route)"])
            }
            context.logger.error("request failed", metadata: ["route": "\(route)", "error.type": "\(type(of: error))"])
            response = Self.error(ServerError(.internalError, "The server could not complete the request. It was not applied; try again.",
                                              status: .internalServerError), request: request)
        }
        metrics.countRequest(route: route, status: Int(response.status.code))
        return response
    }
}

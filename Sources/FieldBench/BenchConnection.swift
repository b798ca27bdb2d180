import NIOCore
import NIOHTTP1
import NIOPosix
import SyncServer

/// One keep-alive HTTP/1.1 connection of a benchmark device, on SwiftNIO.
///
/// The load generator shares the machine with the server it measures; with
/// URLSession (curl underneath on Linux) it took about 1.7 ms of CPU per
/// request, a third of the machine at 500 syncs/s. This client does only
/// what a sync needs (one request at a time per device, gzip bodies), so the
/// cores go to the server. The CLI keeps its URLSession client.
final class BenchConnection: Sendable {
    private let channel: any Channel
    private let collector: ResponseCollector
    private let host: String

    struct Response {
        var status: Int
        /// The body as it crossed the wire (still gzipped if the server gzipped it).
        var body: [UInt8]
        var gzipped: Bool
    }

    static func connect(group: any EventLoopGroup, port: Int) async throws -> BenchConnection {
        let collector = ResponseCollector()
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return BenchConnection(channel: channel, collector: collector, host: "127.0.0.1:\(port)")
    }

    private init(channel: any Channel, collector: ResponseCollector, host: String) {
        self.channel = channel
        self.collector = collector
        self.host = host
    }

    /// Whether the server still has this connection open (it may close an idle one).
    var isActive: Bool { channel.isActive }

    /// Sends one request and waits for its whole response, at most `timeout` seconds.
    func send(method: HTTPMethod, path: String, headers extra: [(String, String)], body: [UInt8],
              timeout: Int64 = 60) async throws -> Response {
        let promise = channel.eventLoop.makePromise(of: Response.self)
        let channel = self.channel
        let collector = self.collector
        let host = self.host
        channel.eventLoop.execute {
            guard collector.expect(promise) else { return }
            // A server that accepts but never answers fails the sync instead of hanging the run.
            let deadline = channel.eventLoop.scheduleTask(in: .seconds(timeout)) {
                collector.timeOut()
                channel.close(promise: nil)
            }
            promise.futureResult.whenComplete { _ in deadline.cancel() }
            var headers = HTTPHeaders([("Host", host), ("Content-Length", String(body.count))])
            for (name, value) in extra { headers.add(name: name, value: value) }
            channel.write(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)),
                          promise: nil)
            if !body.isEmpty { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil) }
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        }
        return try await promise.futureResult.get()
    }

    func close() async {
        try? await channel.close()
    }
}

/// Collects one response at a time. All state is touched on the channel's
/// event loop only (handler callbacks and the `execute` in `send`).
private final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart

    private var promise: EventLoopPromise<BenchConnection.Response>?
    private var status = 0
    private var gzipped = false
    private var body: [UInt8] = []
    private var closed = false

    /// Registers the promise of the next response; fails it at once on a closed connection.
    func expect(_ next: EventLoopPromise<BenchConnection.Response>) -> Bool {
        guard !closed, promise == nil else {
            next.fail(BenchError(closed ? "the connection to fieldsyncd closed" : "a request is already in flight on this connection"))
            return false
        }
        promise = next
        return true
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
            gzipped = head.headers["Content-Encoding"].contains { $0.lowercased() == "gzip" }
            body.removeAll(keepingCapacity: true)
        case .body(let part):
            body.append(contentsOf: part.readableBytesView)
        case .end:
            promise?.succeed(BenchConnection.Response(status: status, body: body, gzipped: gzipped))
            promise = nil
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(BenchError("the connection to fieldsyncd closed"))
        context.fireChannelInactive()
    }

    func timeOut() { fail(BenchError("fieldsyncd did not answer within the timeout")) }

    private func fail(_ error: any Error) {
        closed = true
        promise?.fail(error)
        promise = nil
    }
}

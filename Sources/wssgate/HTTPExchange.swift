import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ReadableErrors

/// One HTTP/1.1 request and its whole answer, for the commands that talk to a gateway: `probe`
/// (health checks in an image without curl) and `reload` (the admin API). TCP, TLS or a Unix
/// socket; the answer's body is kept up to `maxBodyBytes`.
struct HTTPExchange {
    enum Endpoint {
        case tcp(host: String, port: Int, tls: TLSOptions?)
        case unix(path: String)
    }

    struct TLSOptions {
        /// No verification at all (self-signed setups).
        var insecure = false
        /// PEM file of the CAs to trust instead of the system's (a private CA).
        var caFile: String?
    }

    struct Answer {
        var status: Int
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    var endpoint: Endpoint
    var method: HTTPMethod = .GET
    var path: String = "/"
    var headers: [(String, String)] = []
    var body: [UInt8] = []
    var timeout: TimeAmount = .seconds(5)
    var maxBodyBytes = 1 << 20

    func send() async throws -> Answer {
        let group = MultiThreadedEventLoopGroup.singleton
        let promise = group.next().makePromise(of: Answer.self)
        let (sslContext, serverName) = try tlsContext()
        let request = self
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let sslContext {
                        try pipeline.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: serverName))
                    }
                    try pipeline.addHTTPClientHandlers()
                    try pipeline.addHandler(HTTPExchangeHandler(request: request, promise: promise))
                }
            }
        let channel: any Channel
        do {
            switch endpoint {
            case .tcp(let host, let port, _):
                channel = try await bootstrap.connect(host: host, port: port).get()
            case .unix(let path):
                channel = try await bootstrap.connect(unixDomainSocketPath: path).get()
            }
        } catch {
            promise.fail(error)
            throw Failure(description: "cannot connect to \(authority): \(ReadableError.describe(error))")
        }
        let timer = channel.eventLoop.scheduleTask(in: timeout) {
            promise.fail(Failure(description: "no answer from \(authority) within \(Self.seconds(timeout))"))
        }
        defer {
            timer.cancel()
            channel.close(promise: nil)
        }
        do {
            return try await promise.futureResult.get()
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(description: "\(authority): \(ReadableError.describe(error))")
        }
    }

    /// The client TLS context and the name to send by SNI (none for an IP literal).
    private func tlsContext() throws -> (NIOSSLContext?, String?) {
        guard case .tcp(let host, _, let options?) = endpoint else { return (nil, nil) }
        var configuration = TLSConfiguration.makeClientConfiguration()
        if options.insecure { configuration.certificateVerification = .none }
        if let caFile = options.caFile { configuration.trustRoots = .file(caFile) }
        let literal = host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." })
        return (try NIOSSLContext(configuration: configuration), literal ? nil : host)
    }

    /// `host:port` or the socket's path, as a request's `Host` and messages name it.
    var authority: String {
        switch endpoint {
        case .tcp(let host, let port, _): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): path
        }
    }

    static func seconds(_ amount: TimeAmount) -> String { ReadableError.seconds(amount) }
}

private final class HTTPExchangeHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart
    let request: HTTPExchange
    let promise: EventLoopPromise<HTTPExchange.Answer>
    private var status: Int?
    private var body: [UInt8] = []

    init(request: HTTPExchange, promise: EventLoopPromise<HTTPExchange.Answer>) {
        self.request = request
        self.promise = promise
    }

    func channelActive(context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(
            name: "Host",
            value: { if case .unix = request.endpoint { "localhost" } else { request.authority } }()
        )
        headers.add(name: "User-Agent", value: "wssgate/\(WSSGate.version)")
        headers.add(name: "Connection", value: "close")
        if request.method != .GET && request.method != .HEAD {
            headers.add(name: "Content-Length", value: String(request.body.count))
        }
        for (name, value) in request.headers { headers.add(name: name, value: value) }
        let head = HTTPRequestHead(version: .http1_1, method: request.method, uri: request.path, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !request.body.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: request.body)))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
        case .body(let buffer):
            if body.count + buffer.readableBytes <= request.maxBodyBytes { body += buffer.readableBytesView }
        case .end:
            if let status { promise.succeed(HTTPExchange.Answer(status: status, body: body)) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(HTTPExchange.Failure(description: "the connection closed before a whole answer"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}

import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Just enough HTTPS for ACME: one request per connection (`Connection: close`), bounded answers,
/// a deadline per request, and the CA bundle the configuration names. ACME makes a handful of
/// requests a day, so connection reuse would buy nothing.
final class ACMEHTTPClient: Sendable {
    struct Response: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
    }

    /// The largest answer read (a certificate chain is a few KiB).
    static let maximumBodyBytes = 1 << 20

    private let group: any EventLoopGroup
    private let context: NIOSSLContext
    private let timeout: TimeAmount
    private let userAgent: String

    init(
        group: any EventLoopGroup,
        trustRoots: [NIOSSLCertificate]?,
        timeout: TimeAmount = .seconds(30),
        userAgent: String
    ) throws {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["http/1.1"]
        if let trustRoots { configuration.trustRoots = .certificates(trustRoots) }
        self.context = try NIOSSLContext(configuration: configuration)
        self.group = group
        self.timeout = timeout
        self.userAgent = userAgent
    }

    func send(
        _ method: HTTPMethod,
        _ url: String,
        body: [UInt8]? = nil,
        contentType: String? = nil,
        accept: String? = nil
    ) async throws -> Response {
        guard let target = Target(url) else { throw ACMEError(.protocolViolation, "'\(url)' is not an https:// URL") }
        var headers: HTTPHeaders = [
            "Host": target.hostHeader, "User-Agent": userAgent, "Connection": "close",
            "Content-Length": String(body?.count ?? 0),
        ]
        if let contentType { headers.add(name: "Content-Type", value: contentType) }
        if let accept { headers.add(name: "Accept", value: accept) }
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: target.path, headers: headers)
        let context = self.context
        let timeout = self.timeout
        let eventLoop = group.next()
        let promise = eventLoop.makePromise(of: Response.self)
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(min(timeout, .seconds(10)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let tls = try NIOSSLClientHandler(
                        context: context,
                        serverHostname: target.isAddress ? nil : target.host
                    )
                    try channel.pipeline.syncOperations.addHandler(tls)
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise))
                }
            }
        let connected = bootstrap.connect(host: target.host, port: target.port)
        connected.whenComplete { result in
            switch result {
            case .failure(let error):
                promise.fail(ACMEError(.unreachable, "cannot connect to \(target.hostHeader): \(error)"))
            case .success(let channel):
                channel.write(HTTPClientRequestPart.head(head), promise: nil)
                if let body {
                    channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil)
                }
                channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            }
        }
        let deadline = eventLoop.scheduleTask(in: timeout) {
            promise.fail(
                ACMEError(.unreachable, "\(method) \(url): no answer within \(timeout.nanoseconds / 1_000_000_000) s")
            )
        }
        // Whatever ends the request (answer, deadline, cancellation) closes the connection.
        promise.futureResult.whenComplete { _ in
            deadline.cancel()
            connected.whenSuccess { $0.close(promise: nil) }
        }
        do {
            return try await withTaskCancellationHandler {
                try await promise.futureResult.get()
            } onCancel: {
                promise.fail(CancellationError())
            }
        } catch let error as ACMEError {
            throw error
        } catch let error as CancellationError {
            throw error
        } catch {
            throw ACMEError(.unreachable, "\(method) \(url): \(error)")
        }
    }

    /// An https URL taken apart.
    struct Target {
        var host: String
        var port: Int
        var path: String
        var isAddress: Bool

        var hostHeader: String {
            let shown = host.contains(":") ? "[\(host)]" : host
            return port == 443 ? shown : "\(shown):\(port)"
        }

        init?(_ url: String) {
            guard url.hasPrefix("https://") else { return nil }
            let rest = url.dropFirst(8)
            let authority = rest.prefix { $0 != "/" && $0 != "?" }
            let remainder = rest.dropFirst(authority.count)
            path = remainder.isEmpty ? "/" : (remainder.hasPrefix("?") ? "/" + remainder : String(remainder))
            guard !authority.isEmpty, !authority.contains("@") else { return nil }
            if authority.hasPrefix("[") {
                guard let close = authority.firstIndex(of: "]") else { return nil }
                host = String(authority[authority.index(after: authority.startIndex)..<close])
                let after = authority[authority.index(after: close)...]
                if after.isEmpty {
                    port = 443
                } else {
                    guard after.hasPrefix(":"), let number = Int(after.dropFirst()), (1...65535).contains(number) else {
                        return nil
                    }
                    port = number
                }
            } else if let colon = authority.lastIndex(of: ":") {
                host = String(authority[..<colon])
                guard let number = Int(authority[authority.index(after: colon)...]), (1...65535).contains(number) else {
                    return nil
                }
                port = number
            } else {
                host = String(authority)
                port = 443
            }
            guard !host.isEmpty else { return nil }
            isAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
        }
    }

    /// Gathers one response; fails on an answer larger than `maximumBodyBytes` or a connection
    /// that ends early.
    private final class ResponseCollector: ChannelInboundHandler {
        typealias InboundIn = HTTPClientResponsePart

        private let promise: EventLoopPromise<Response>
        private var head: HTTPResponseHead?
        private var body: [UInt8] = []

        init(promise: EventLoopPromise<Response>) {
            self.promise = promise
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
            case .body(let buffer):
                guard body.count + buffer.readableBytes <= ACMEHTTPClient.maximumBodyBytes else {
                    promise.fail(
                        ACMEError(.protocolViolation, "an answer larger than \(ACMEHTTPClient.maximumBodyBytes) bytes")
                    )
                    return context.close(promise: nil)
                }
                body.append(contentsOf: buffer.readableBytesView)
            case .end:
                if let head {
                    promise.succeed(Response(status: Int(head.status.code), headers: head.headers, body: body))
                }
                context.close(promise: nil)
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            promise.fail(error)
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            promise.fail(ACMEError(.unreachable, "the connection closed before a whole answer arrived"))
            context.fireChannelInactive()
        }
    }
}

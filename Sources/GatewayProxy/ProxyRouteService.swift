import GatewayCore
import GatewayWebSocket
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

/// A `proxy` route: each upgrade is first made upstream — the client's handshake headers plus
/// `Forwarded` and `X-Forwarded-For/-Proto/-Host` — and only an upstream 101 upgrades the client,
/// with the upstream's own answer. An upstream refusal reaches the client with the same status;
/// an unreachable upstream is 502, a silent one 504.
///
/// As a `Service` it checks the upstream every two seconds: the route is ready (`/readyz`) while
/// the upstream accepts connections.
public final class ProxyRouteService: RouteService, Service, Sendable {
    public let route: RouteConfiguration
    private let settings: ProxySettings
    private let group: any EventLoopGroup
    private let logger: Logger
    private let reachable = NIOLockedValueBox(false)
    private let retired = NIOLockedValueBox(false)

    public init(route: RouteConfiguration, settings: ProxySettings, group: any EventLoopGroup, logger: Logger) {
        self.route = route
        self.settings = settings
        self.group = group
        var logger = logger
        logger[metadataKey: "route"] = .string(route.name)
        self.logger = logger
    }

    public var isReady: Bool { reachable.withLockedValue { $0 } }

    public func run() async throws {
        await cancelWhenGracefulShutdown { await self.probeForever() }
    }

    /// Takes the route's service out of use (a reload replaced or removed the route): the probe
    /// stops. Connections already joined to the upstream do not depend on it and go on.
    public func retire() {
        retired.withLockedValue { $0 = true }
    }

    private var isRetired: Bool { retired.withLockedValue { $0 } }

    private func probeForever() async {
        while !Task.isCancelled && !isRetired {
            let up: Bool
            do {
                let channel = try await connect(on: group.next()).get()
                try? await channel.close()
                up = true
            } catch {
                up = false
            }
            let changed = reachable.withLockedValue { state -> Bool in
                defer { state = up }
                return state != up
            }
            if changed {
                if up { logger.info("upstream reachable") } else { logger.warning("upstream unreachable") }
            }
            // Two seconds between probes, in short steps so a retired service ends soon.
            for _ in 0..<20 where !Task.isCancelled && !isRetired {
                try? await Task.sleep(nanoseconds: 100_000_000)
            }
        }
    }

    private func connect(
        on eventLoop: any EventLoop,
        handshake: (@Sendable (any Channel) throws -> Void)? = nil
    ) -> EventLoopFuture<any Channel> {
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(settings.connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.recvAllocator, value: ReceiveBuffers.connection)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try handshake?(channel) }
            }
        switch settings.upstream {
        case .tcp(let host, let port):
            return bootstrap.connect(host: host, port: port)
        case .unix(let path):
            return bootstrap.connect(unixDomainSocketPath: path)
        }
    }

    public func prepare(
        _ request: UpgradeRequest,
        eventLoop: any EventLoop,
        completion: @escaping (UpgradeVerdict) -> Void
    ) {
        let head = Self.upstreamRequest(request, settings: settings)
        let promise = eventLoop.makePromise(of: UpstreamHandshake.Outcome.self)
        let timeout = settings.handshakeTimeout
        let logger = self.logger
        let connected = connect(on: eventLoop) { channel in
            try channel.pipeline.syncOperations.addHandler(
                UpstreamHandshake(request: head, promise: promise, timeout: timeout)
            )
        }
        connected.whenFailure { error in
            logger.debug("upstream connect failed", metadata: ["error": .string("\(error)")])
            promise.succeed(.unreachable)
        }
        let loopBound = NIOLoopBound(completion, eventLoop: eventLoop)
        promise.futureResult.whenSuccess { outcome in
            let completion = loopBound.value
            switch outcome {
            case .upgraded(let channel, let responseHead, let firstFrames):
                completion(.passthrough(upstream: channel, responseHead: responseHead, firstFrames: firstFrames))
            case .refused(let status, let statusLine):
                completion(.refuse(status: status, message: "upstream refused: \(statusLine)"))
            case .unreachable:
                completion(.refuse(status: 502, message: "the upstream is unreachable"))
            case .timedOut:
                completion(.refuse(status: 504, message: "the upstream did not answer in time"))
            case .malformed:
                completion(.refuse(status: 502, message: "the upstream's answer is not HTTP"))
            }
        }
    }

    /// The upstream request: the client's headers (but its own Host and hop-by-hop ones), the
    /// upgrade headers, and where the client came from.
    static func upstreamRequest(_ request: UpgradeRequest, settings: ProxySettings) -> String {
        var target = settings.path
        if let question = request.target.firstIndex(of: "?") {
            target += request.target[question...]
        }
        let clientHost = request.headers.first { $0.0 == "host" }?.1 ?? ""
        let proto = request.tlsVersion == nil ? "http" : "https"
        var peerHost = request.peer
        if let colon = peerHost.lastIndex(of: ":") { peerHost = String(peerHost[..<colon]) }
        let forwardedFor = peerHost.hasPrefix("[") ? "\"\(peerHost)\"" : peerHost
        let skip: Set<String> = [
            "host", "connection", "upgrade", "forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
            "keep-alive", "proxy-connection", "te", "transfer-encoding", "content-length",
        ]
        var text =
            "GET \(target) HTTP/1.1\r\nHost: \(settings.hostHeader)\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        for (name, value) in request.headers where !skip.contains(name) {
            text += "\(name): \(value)\r\n"
        }
        let bareFor = peerHost.trimmingBrackets
        text += "Forwarded: for=\(forwardedFor);proto=\(proto);host=\"\(clientHost)\"\r\n"
        text += "X-Forwarded-For: \(bareFor)\r\nX-Forwarded-Proto: \(proto)\r\nX-Forwarded-Host: \(clientHost)\r\n\r\n"
        return text
    }
}

extension String {
    fileprivate var trimmingBrackets: String {
        hasPrefix("[") && hasSuffix("]") ? String(dropFirst().dropLast()) : self
    }
}

/// Sends the upgrade request upstream and reads the answer's head (bounded to 16 KiB).
final class UpstreamHandshake: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Outcome: Sendable {
        case upgraded(any Channel, responseHead: ByteBuffer, firstFrames: ByteBuffer)
        case refused(status: Int, statusLine: String)
        case unreachable
        case timedOut
        case malformed
    }

    private let request: String
    private let promise: EventLoopPromise<Outcome>
    private let timeout: TimeAmount
    private var buffer = ByteBuffer()
    private var timer: Scheduled<Void>?
    private var done = false

    init(request: String, promise: EventLoopPromise<Outcome>, timeout: TimeAmount) {
        self.request = request
        self.promise = promise
        self.timeout = timeout
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: request)), promise: nil)
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            self.finish(.timedOut, context: context, close: true)
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        var chunk = unwrapInboundIn(data)
        buffer.writeBuffer(&chunk)
        let view = buffer.readableBytesView
        guard let end = view.firstRange(of: [13, 10, 13, 10]) else {
            if buffer.readableBytes > 16384 { finish(.malformed, context: context, close: true) }
            return
        }
        let headLength = end.upperBound - view.startIndex
        let head = buffer.getSlice(at: buffer.readerIndex, length: headLength)!
        let statusLine = String(buffer: head).split(separator: "\r\n", maxSplits: 1).first.map(String.init) ?? ""
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            return finish(.malformed, context: context, close: true)
        }
        guard status == 101 else {
            return finish(
                .refused(status: (400...599).contains(status) ? status : 502, statusLine: statusLine),
                context: context,
                close: true
            )
        }
        // The head and anything that came with it (the upstream's first frames) go to the client.
        buffer.moveReaderIndex(forwardBy: headLength)
        finish(.upgraded(context.channel, responseHead: head, firstFrames: buffer), context: context, close: false)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.unreachable, context: context, close: false)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.unreachable, context: context, close: true)
    }

    private func finish(_ outcome: Outcome, context: ChannelHandlerContext, close: Bool) {
        guard !done else { return }
        done = true
        timer?.cancel()
        promise.succeed(outcome)
        if close { context.close(promise: nil) }
    }
}

import GatewayCore
import GatewayWebSocket
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOWebSocket
import ServiceLifecycle

/// A `proxy` route: each upgrade is first made upstream — the client's handshake headers plus
/// `Forwarded` and `X-Forwarded-For/-Proto/-Host` — and only an upstream 101 upgrades the client,
/// with the upstream's own answer. An upstream refusal reaches the client with the same status;
/// an unreachable upstream is 502, a silent one 504.
///
/// As a `Service` it checks the upstream every two seconds: while the upstream does not accept
/// connections the route is degraded (named at `/v1/status`, said in the log), and the other
/// routes go on serving.
public final class ProxyRouteService: RouteService, Service, Sendable {
    public let route: RouteConfiguration
    private let settings: ProxySettings
    private let group: any EventLoopGroup
    private let logger: Logger
    private let reachability = Reachability()
    /// Opens when a reload retires the route: its probes end.
    private let retired = Latch()

    public init(route: RouteConfiguration, settings: ProxySettings, group: any EventLoopGroup, logger: Logger) {
        self.route = route
        self.settings = settings
        self.group = group
        var logger = logger
        logger[metadataKey: "route"] = .string(route.name)
        self.logger = logger
    }

    public var isReady: Bool { true }

    public var degradation: String? {
        reachability.isDown ? "its upstream \(settings.upstreamText) does not accept connections" : nil
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown { await self.probeForever() }
    }

    /// Takes the route's service out of use (a reload replaced or removed the route): the probe
    /// stops. Connections already joined to the upstream do not depend on it and go on.
    public func retire() {
        retired.open()
    }

    private var isRetired: Bool { retired.isOpen }

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
            if let news = reachability.record(reachable: up) {
                if news {
                    logger.info("upstream reachable", metadata: ["upstream": .string(settings.upstreamText)])
                } else {
                    logger.warning(
                        "upstream unreachable: the route's clients get 502 until it is back",
                        metadata: ["upstream": .string(settings.upstreamText)]
                    )
                }
            }
            // Two seconds between probes; a retired service ends at once.
            _ = await retired.opens(within: .seconds(2), on: group.next())
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
        // In `frames` mode the upstream leg is a WebSocket of the gateway's own: its own key, the
        // subprotocols it may answer with, no extensions.
        let frames =
            settings.mode == .frames
            ? FramesHandshake(key: WebSocketHandshake.randomKey(), subprotocols: Self.subprotocolOffer(request))
            : nil
        let head = Self.upstreamRequest(request, settings: settings, frames: frames)
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
        let settings = self.settings
        promise.futureResult.whenSuccess { outcome in
            let completion = loopBound.value
            switch outcome {
            case .upgraded(let channel, let responseHead, let firstFrames):
                guard let frames else {
                    return completion(
                        .passthrough(upstream: channel, responseHead: responseHead, firstFrames: firstFrames)
                    )
                }
                completion(
                    Self.relay(
                        channel,
                        responseHead: responseHead,
                        firstFrames: firstFrames,
                        handshake: frames,
                        limits: request.route.limits,
                        settings: settings,
                        logger: logger
                    )
                )
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

    /// What the gateway offers upstream as a WebSocket client in `frames` mode.
    struct FramesHandshake: Sendable {
        var key: String
        /// `Sec-WebSocket-Protocol` entries offered upstream; its choice is what the client is
        /// answered.
        var subprotocols: [String]
    }

    /// The subprotocols offered upstream: the one the route's own list selected, when the route
    /// has a list; otherwise what the client offered (but a token carried as a subprotocol and
    /// its marker), so that the upstream chooses, as behind nginx.
    static func subprotocolOffer(_ request: UpgradeRequest) -> [String] {
        guard request.route.subprotocols.isEmpty else { return request.subprotocol.map { [$0] } ?? [] }
        let offered = WebSocketHandshake.listItems(request.headers.filter { $0.0 == "sec-websocket-protocol" }.map(\.1))
        guard let auth = request.route.auth, auth.sources.contains(.protocol) else { return offered.map(String.init) }
        return offered.filter { !$0.hasPrefix(auth.protocolPrefix) && $0 != auth.protocolMarker }.map(String.init)
    }

    /// Checks the upstream's 101 as a WebSocket client must (RFC 6455 §4.1) and joins the
    /// upstream channel to a `FramesRelay`, which the client's session will talk to.
    static func relay(
        _ channel: any Channel,
        responseHead: ByteBuffer,
        firstFrames: ByteBuffer,
        handshake: FramesHandshake,
        limits: WebSocketLimits,
        settings: ProxySettings,
        logger: Logger
    ) -> UpgradeVerdict {
        func refuse(_ why: String) -> UpgradeVerdict {
            channel.close(promise: nil)
            logger.warning("upstream handshake refused", metadata: ["reason": .string(why)])
            return .refuse(status: 502, message: "the upstream's answer is not a valid WebSocket upgrade: \(why)")
        }
        let accept = WebSocketHandshake.responseHeaderValues("sec-websocket-accept", in: responseHead)
        guard accept == [WebSocketHandshake.acceptValue(forKey: handshake.key)] else {
            return refuse("Sec-WebSocket-Accept does not match the key")
        }
        guard
            WebSocketHandshake.responseHeaderValues("sec-websocket-extensions", in: responseHead).allSatisfy(\.isEmpty)
        else {
            return refuse("it chose an extension it was not offered")
        }
        let chosen = WebSocketHandshake.responseHeaderValues("sec-websocket-protocol", in: responseHead)
        guard chosen.count <= 1, chosen.allSatisfy(handshake.subprotocols.contains) else {
            return refuse("it chose a subprotocol it was not offered")
        }
        let relay = FramesRelay(limits: limits, lostCloseCode: settings.lostCloseCode, logger: logger)
        do {
            try channel.pipeline.syncOperations.addHandlers([
                ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: FramesRelay.maxFrameSize(for: limits))),
                WebSocketFrameEncoder(),
                relay,
            ])
        } catch {
            channel.close(promise: nil)
            return .refuse(status: 502, message: "the upstream connection failed")
        }
        if firstFrames.readableBytes > 0 { channel.pipeline.syncOperations.fireChannelRead(NIOAny(firstFrames)) }
        return .acceptAnswering(relay, subprotocol: chosen.first)
    }

    /// The upstream request: the client's headers (but its own Host and hop-by-hop ones), the
    /// upgrade headers, and where the client came from.
    static func upstreamRequest(
        _ request: UpgradeRequest,
        settings: ProxySettings,
        frames: FramesHandshake? = nil
    ) -> String {
        var target = settings.path
        if let question = request.target.firstIndex(of: "?") {
            target += request.target[question...]
        }
        let clientHost = request.headers.first { $0.0 == "host" }?.1 ?? ""
        let proto = request.tlsVersion == nil ? "http" : "https"
        var peerHost = request.peer
        if let colon = peerHost.lastIndex(of: ":") { peerHost = String(peerHost[..<colon]) }
        let forwardedFor = peerHost.hasPrefix("[") ? "\"\(peerHost)\"" : peerHost
        var skip: Set<String> = [
            "host", "connection", "upgrade", "forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
            "keep-alive", "proxy-connection", "te", "transfer-encoding", "content-length",
        ]
        var text =
            "GET \(target) HTTP/1.1\r\nHost: \(settings.hostHeader)\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        if let frames {
            // The gateway's own handshake: the client's key, version, extensions and
            // subprotocols belong to the client's leg.
            skip.formUnion([
                "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol",
            ])
            text += "Sec-WebSocket-Key: \(frames.key)\r\nSec-WebSocket-Version: 13\r\n"
            if !frames.subprotocols.isEmpty {
                text += "Sec-WebSocket-Protocol: \(frames.subprotocols.joined(separator: ", "))\r\n"
            }
        }
        for (name, value) in request.headers where !skip.contains(name) {
            text += "\(name): \(value)\r\n"
        }
        let bareFor = peerHost.trimmingBrackets
        // A quoted-string (RFC 7239 §4, RFC 9110 §5.6.4): a client's `"` or `\\` must not end it
        // early and add elements of its own (a `for=` naming any address).
        text += "Forwarded: for=\(forwardedFor);proto=\(proto);host=\(clientHost.quotedString)\r\n"
        text += "X-Forwarded-For: \(bareFor)\r\nX-Forwarded-Proto: \(proto)\r\nX-Forwarded-Host: \(clientHost)\r\n\r\n"
        return text
    }
}

extension String {
    /// The text as an HTTP quoted-string: `"` and `\\` escaped.
    var quotedString: String {
        var out = "\""
        for character in self {
            if character == "\"" || character == "\\" { out.append("\\") }
            out.append(character)
        }
        return out + "\""
    }

    fileprivate var trimmingBrackets: String {
        hasPrefix("[") && hasSuffix("]") ? String(dropFirst().dropLast()) : self
    }
}

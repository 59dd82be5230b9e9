import GatewayAuth
import GatewayCore
import GatewayMetrics
import GatewayTLS
import GatewayWebSocket
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket

/// The HTTP/1.1 side of a connection: health endpoints, clear refusals, and the upgrade to a
/// WebSocket session, done here rather than by NIO's one-shot upgrade handler so every refusal
/// gets its exact status and keep-alive requests may upgrade later on the same connection.
final class HTTPConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    struct Dependencies {
        /// Routes, their services and token verifiers: each request takes the snapshot current
        /// when its head arrives, so a reload applies to the next request.
        var live: LiveSettings
        var state: GatewayState
        var logger: Logger
        var drainSpread: TimeAmount
        /// Open WebSocket connections, for the admin API.
        var sessions: SessionDirectory
        var metrics: GatewayMetrics
        var limiter: ClientLimiter
        /// `Strict-Transport-Security` for this listener's answers (TLS listeners).
        var hsts: String? = nil
        /// A plain listener that sends browsers to https.
        var redirect: HTTPSRedirect? = nil
        /// Pending ACME challenges: HTTP-01 tokens are answered here.
        var acmeChallenges: ACMEChallenges? = nil
        /// The listener's load balancers, when its connections start with a PROXY header.
        var proxyProtocol: ProxyProtocolSettings? = nil
        /// Where a busy session lets its event loop's other channels go first.
        var yield: EventLoopYield? = nil
    }

    /// What carries the requests: a connection of its own (HTTP/1.1, with the handlers an
    /// upgrade removes), or one HTTP/2 stream (whose codec becomes a tunnel on an upgrade).
    enum Transport {
        case http1(
            decoder: ByteToMessageHandler<HTTPRequestDecoder>,
            encoder: HTTPResponseEncoder,
            requestGuard: HTTPRequestGuard
        )
        case http2(HTTP2StreamCodec)

        /// As the access line and `wssgate_upgrades_total` name it.
        var name: String {
            if case .http2 = self { return "h2" }
            return "http/1.1"
        }
    }

    let dependencies: Dependencies
    let transport: Transport
    /// The request's phase, and whether the gateway drains.
    var state = HTTPConnectionState()
    /// What the router decided at the request's head, carried out at its end.
    var pending: (decision: RequestRouter.Decision, head: HTTPRequestHead)?
    /// The request being answered asked for an upgrade: a refusal is a failed handshake.
    var answeringUpgrade = false
    /// The target of the request being answered, for the log line of a refused upgrade.
    var answeringTarget = ""
    /// Who sent an upgrade request: the client a trusted proxy named, else the peer. Resolved
    /// once per upgrade request, for the limiter, the route and the log line of a refusal.
    var answeringClient: (bytes: [UInt8]?, text: String) = (nil, "")
    /// Routes, services and verifiers as they were when the request's head arrived.
    var snapshot: LiveSettings.Snapshot
    /// The client a PROXY protocol header named (listeners with `proxy_protocol`).
    let origin: ConnectionOrigin?

    init(dependencies: Dependencies, transport: Transport, origin: ConnectionOrigin? = nil) {
        self.dependencies = dependencies
        self.transport = transport
        self.origin = origin
        self.snapshot = dependencies.live.current
    }

    /// The connection's peer as the gateway believes it: the client a load balancer named in a
    /// PROXY header, else the TCP peer.
    func peerAddress(_ context: ChannelHandlerContext) -> SocketAddress? {
        origin?.client ?? context.channel.remoteAddress
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard state.headArrived() else { return }
            context.triggerUserOutboundEvent(HTTPRequestGuard.Event.headReceived, promise: nil)
            pending = (decide(head, context: context), head)
        case .body:
            break  // Nothing here takes a body: it is dropped (within the guard's body timeout).
        case .end:
            context.triggerUserOutboundEvent(HTTPRequestGuard.Event.requestEnded, promise: nil)
            let request = pending
            pending = nil
            var isUpgrade = false
            if case .upgrade = request?.decision { isUpgrade = true }
            switch state.endArrived(request, isUpgrade: isUpgrade) {
            case .answer((.respond(var response), _), let keepAlive):
                response.keepAlive = response.keepAlive && keepAlive
                respond(context: context, response)
            case .answer((.file(let settings, let relative, let ifNoneMatch, let keep, let headOnly), _), let keepAlive):
                guard let found = StaticFiles.resolve(relative, in: settings), found.size <= StaticFiles.maxFileBytes
                else {
                    return respond(
                        context: context,
                        .init(
                            status: .notFound,
                            headers: [:],
                            body: "not found\n",
                            keepAlive: keep && keepAlive,
                            headOnly: headOnly
                        )
                    )
                }
                serve(
                    found,
                    ifNoneMatch: ifNoneMatch,
                    context: context,
                    keepAlive: keep && keepAlive,
                    headOnly: headOnly
                )
            case .askRoute((.upgrade(let acceptance), let head)):
                decide(context: context, acceptance: acceptance, head: head)
            case .refuseDraining:
                respondDraining(context: context)
            case .answer, .askRoute, .none:
                break
            }
        }
    }

    /// The router's answer to a request head, with the routes of the snapshot it takes.
    private func decide(_ head: HTTPRequestHead, context: ChannelHandlerContext) -> RequestRouter.Decision {
        answeringUpgrade = UpgradeNegotiator.isUpgradeRequest(head)
        answeringTarget = head.uri
        snapshot = dependencies.live.current
        if answeringUpgrade {
            answeringClient = ClientAddress.resolve(
                peer: peerAddress(context),
                headers: head.headers,
                trusted: dependencies.limiter.trustedProxies
            )
        }
        let gatewayState = dependencies.state
        let router = RequestRouter(
            routes: snapshot.routes,
            redirect: dependencies.redirect,
            acmeChallenge: dependencies.acmeChallenges.map { challenges in
                { challenges.keyAuthorization(forToken: $0) }
            },
            health: { .init(phase: gatewayState.readiness, degradation: gatewayState.degradation) }
        )
        return router.decide(head)
    }

    /// 503 to an upgrade that arrives (or completes) while the gateway drains.
    func respondDraining(context: ChannelHandlerContext) {
        respond(
            context: context,
            .init(status: .serviceUnavailable, headers: [:], body: "draining\n", keepAlive: false, headOnly: false)
        )
    }

    func respond(context: ChannelHandlerContext, _ response: RequestRouter.Response) {
        let (status, extra, body, keepAlive, headOnly) = (
            response.status, response.headers, response.body, response.keepAlive, response.headOnly
        )
        if status.code >= 400 {
            dependencies.state.refused(status: Int(status.code))
            if answeringUpgrade {
                dependencies.metrics.handshakeFailed(reason: "http_\(status.code)")
                var metadata: Logger.Metadata = [
                    "status": .stringConvertible(status.code), "reason": .string(body.trimmingSuffix("\n")),
                    "client": .string(answeringClient.text), "target": .string(answeringTarget),
                ]
                // Behind a trusted proxy the client is who it named; the proxy is said too.
                let peer = PeerAddress.describe(peerAddress(context))
                if let ip = peerAddress(context)?.ipAddress, ip != answeringClient.text {
                    metadata["peer"] = .string(peer)
                }
                dependencies.logger.info("upgrade refused", metadata: metadata)
            }
        }
        var headers = extra
        if let hsts = dependencies.hsts { headers.replaceOrAdd(name: "Strict-Transport-Security", value: hsts) }
        headers.replaceOrAdd(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.replaceOrAdd(name: "Content-Length", value: String(body.utf8.count))
        headers.replaceOrAdd(name: "Cache-Control", value: "no-store")
        if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))),
            promise: nil
        )
        if !headOnly {
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))),
                promise: nil
            )
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if keepAlive {
            context.triggerUserOutboundEvent(HTTPRequestGuard.Event.responseComplete, promise: nil)
        } else {
            done.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch error {
        case let error as HTTPParserError:
            guard state.malformed() else { return }
            let status: HTTPResponseStatus = error == .headerOverflow ? .requestHeaderFieldsTooLarge : .badRequest
            respond(
                context: context,
                .init(
                    status: status,
                    headers: [:],
                    body: status == .badRequest ? "malformed request\n" : "request head too large\n",
                    keepAlive: false,
                    headOnly: false
                )
            )
        default:
            Self.connectionFailed(error, context: context, dependencies: dependencies, peer: peerAddress(context))
        }
    }

    /// A connection error outside a request: a failed TLS handshake is counted and logged, any
    /// other error logged; the connection closes.
    static func connectionFailed(
        _ error: any Error,
        context: ChannelHandlerContext,
        dependencies: Dependencies,
        peer: SocketAddress?
    ) {
        switch error {
        case NIOSSLError.uncleanShutdown:
            break
        case is NIOSSLError, is BoringSSLError:
            dependencies.state.tlsHandshakeFailed()
            dependencies.metrics.handshakeFailed(reason: "tls")
            dependencies.logger.debug(
                "tls handshake failed",
                metadata: ["peer": .string(PeerAddress.describe(peer)), "error": .string("\(error)")]
            )
        default:
            dependencies.logger.debug(
                "connection error",
                metadata: ["peer": .string(PeerAddress.describe(peer)), "error": .string("\(error)")]
            )
        }
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // Between requests: close now. Mid-request: the response says `Connection: close`.
            if state.quiesce() { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}

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
    private let transport: Transport
    /// The request's phase, and whether the gateway drains.
    private var state = HTTPConnectionState()
    /// What the router decided at the request's head, carried out at its end.
    private var pending: (decision: RequestRouter.Decision, head: HTTPRequestHead)?
    /// The request being answered asked for an upgrade: a refusal is a failed handshake.
    private var answeringUpgrade = false
    /// The target of the request being answered, for the log line of a refused upgrade.
    private var answeringTarget = ""
    /// Who sent an upgrade request: the client a trusted proxy named, else the peer. Resolved
    /// once per upgrade request, for the limiter, the route and the log line of a refusal.
    private var answeringClient: (bytes: [UInt8]?, text: String) = (nil, "")
    /// Routes, services and verifiers as they were when the request's head arrived.
    private var snapshot: LiveSettings.Snapshot
    /// The client a PROXY protocol header named (listeners with `proxy_protocol`).
    private let origin: ConnectionOrigin?

    init(dependencies: Dependencies, transport: Transport, origin: ConnectionOrigin? = nil) {
        self.dependencies = dependencies
        self.transport = transport
        self.origin = origin
        self.snapshot = dependencies.live.current
    }

    /// The connection's peer as the gateway believes it: the client a load balancer named in a
    /// PROXY header, else the TCP peer.
    private func peerAddress(_ context: ChannelHandlerContext) -> SocketAddress? {
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
    private func respondDraining(context: ChannelHandlerContext) {
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

    /// Asks the route's service whether (and to what) to upgrade; answers with its refusal, or
    /// upgrades.
    private func decide(context: ChannelHandlerContext, acceptance: UpgradeNegotiator.Acceptance, head: HTTPRequestHead)
    {
        guard let service = snapshot.services[acceptance.route.name] else {
            return refuseUpgrade(context: context, .serviceUnavailable, "route not available")
        }
        // On an HTTP/2 stream, TLS is the connection's (the stream channel's parent); an
        // accepted connection's parent is the listening socket.
        var connection = context.channel
        if case .http2 = transport, let parent = context.channel.parent { connection = parent }
        let tlsHandler = try? connection.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)
        let tlsVersion = tlsHandler?.tlsVersion
        let clientSubject = tlsHandler?.peerCertificate.flatMap(CertificateMaterial.subject(of:))
        let limiter = dependencies.limiter
        let client = answeringClient
        switch limiter.admit(client.bytes) {
        case .admitted:
            break
        case .full(let overall):
            dependencies.metrics.limitHit(overall ? "connections" : "connections_per_ip")
            let why = overall ? "the gateway is at its connection limit" : "too many connections from your address"
            return refuseUpgrade(context: context, .serviceUnavailable, why, headers: ["Retry-After": "5"])
        case .tooFast(let seconds):
            dependencies.metrics.limitHit("connections_per_second_per_ip")
            return refuseUpgrade(
                context: context,
                .tooManyRequests,
                "too many new connections from your address",
                headers: ["Retry-After": String(seconds)]
            )
        }
        // The slot is held for the connection's life, or given back if it does not upgrade.
        let clientBytes = client.bytes
        let releaseSlot: @Sendable () -> Void = { limiter.release(clientBytes) }
        let fromProxy = client.text != peerAddress(context)?.ipAddress
        let connectionID = dependencies.sessions.ids.next()
        var headers = head.headers.compactMap { field -> (String, String)? in
            field.name.hasPrefix(":") ? nil : (field.name.lowercased(), field.value)
        }
        if acceptance.overHTTP2 {
            // An HTTP/2 client sends no key; an HTTP/1.1 upstream behind a `bytes` proxy needs
            // one, and its accept value is checked against it there.
            headers.append(("sec-websocket-key", WebSocketHandshake.randomKey()))
        }
        var request = UpgradeRequest(
            connectionID: connectionID,
            route: acceptance.route,
            target: head.uri,
            headers: headers,
            peer: fromProxy ? client.text : PeerAddress.describe(peerAddress(context)),
            subprotocol: acceptance.subprotocol,
            tlsVersion: tlsVersion.map { "\($0)" }
        )
        request.clientSubject = clientSubject
        guard let verifier = snapshot.verifiers[acceptance.route.name], let auth = acceptance.route.auth else {
            return ask(service, request, acceptance: acceptance, head: head, context: context, releaseSlot: releaseSlot)
        }
        // The route wants a token: checked before its service hears of the connection.
        guard let token = TokenExtractor.token(in: request.headers, target: head.uri, settings: auth) else {
            releaseSlot()
            return refuseToken(AuthFailure(.missing, "a token is required"), context: context, peer: request.peer)
        }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let checked = context.eventLoop.makePromise(of: JWTVerifier.Verified.self)
        checked.completeWithTask { try await verifier.verify(token) }
        let unverified = request
        checked.futureResult.whenComplete { result in
            let (handler, context) = loopBound.value
            switch result {
            case .success(let verified):
                var request = unverified
                request.claims = verified.claimsJSON
                request.subject = verified.subject
                handler.ask(
                    service,
                    request,
                    acceptance: acceptance,
                    head: head,
                    context: context,
                    releaseSlot: releaseSlot
                )
            case .failure(let error):
                releaseSlot()
                guard context.channel.isActive else { return handler.state.upgradeRefused() }
                handler.refuseToken(
                    error as? AuthFailure ?? AuthFailure(.malformed, "the token is not a JWT"),
                    context: context,
                    peer: unverified.peer
                )
            }
        }
    }

    /// 401 for a missing or refused token: the reason, never the token, in the answer and the log.
    private func refuseToken(_ failure: AuthFailure, context: ChannelHandlerContext, peer: String) {
        dependencies.logger.info(
            "token refused",
            metadata: ["peer": .string(peer), "reason": .string(failure.code.rawValue)]
        )
        let challenge =
            failure.code == .missing
            ? "Bearer realm=\"wssgate\""
            : "Bearer realm=\"wssgate\", error=\"invalid_token\", error_description=\"\(failure.message)\""
        refuseUpgrade(context: context, .unauthorized, failure.message, headers: ["WWW-Authenticate": challenge])
    }

    /// A final answer to an upgrade request: the connection closes after it.
    private func refuseUpgrade(
        context: ChannelHandlerContext,
        _ status: HTTPResponseStatus,
        _ message: String,
        headers: HTTPHeaders = [:]
    ) {
        state.upgradeRefused()
        respond(
            context: context,
            .init(status: status, headers: headers, body: message + "\n", keepAlive: false, headOnly: false)
        )
    }

    /// Hands the upgrade to the route's service and carries out its verdict.
    private func ask(
        _ service: any RouteService,
        _ request: UpgradeRequest,
        acceptance: UpgradeNegotiator.Acceptance,
        head: HTTPRequestHead,
        context: ChannelHandlerContext,
        releaseSlot: @escaping @Sendable () -> Void
    ) {
        let connectionID = request.connectionID
        let loopBoundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        service.prepare(request, eventLoop: context.eventLoop) { [self] verdict in
            let context = loopBoundContext.value
            switch verdict {
            case .accept(let application):
                self.accepted(application, acceptance, request, head: head, context: context, releaseSlot: releaseSlot)
            case .acceptAnswering(let application, let subprotocol):
                self.accepted(
                    application,
                    acceptance.answering(subprotocol: subprotocol),
                    request,
                    head: head,
                    context: context,
                    releaseSlot: releaseSlot
                )
            case .passthrough(let upstream, let responseHead, let firstFrames):
                if case .abandon(let answerDraining) = self.state.upgradeAccepted(
                    clientActive: context.channel.isActive
                ) {
                    releaseSlot()
                    upstream.close(promise: nil)
                    if answerDraining { self.respondDraining(context: context) }
                    return
                }
                context.channel.closeFuture.whenComplete { _ in releaseSlot() }
                self.passThrough(
                    context: context,
                    upstream: upstream,
                    responseHead: responseHead,
                    firstFrames: firstFrames,
                    connectionID: connectionID,
                    route: acceptance.route,
                    user: request.subject
                )
            case .refuse(let status, let message):
                releaseSlot()
                guard context.channel.isActive else { return self.state.upgradeRefused() }
                self.refuseUpgrade(context: context, HTTPResponseStatus(statusCode: status), message)
            }
        }
    }

    /// Upgrades a client its route accepted, unless it went away (or a drain began) meanwhile.
    private func accepted(
        _ application: any WebSocketApplication,
        _ acceptance: UpgradeNegotiator.Acceptance,
        _ request: UpgradeRequest,
        head: HTTPRequestHead,
        context: ChannelHandlerContext,
        releaseSlot: @escaping @Sendable () -> Void
    ) {
        if case .abandon(let answerDraining) = state.upgradeAccepted(clientActive: context.channel.isActive) {
            releaseSlot()
            application.upgradeAbandoned()
            if answerDraining { respondDraining(context: context) }
            return
        }
        context.channel.closeFuture.whenComplete { _ in releaseSlot() }
        upgrade(
            context: context,
            acceptance: acceptance,
            application: application,
            connectionID: request.connectionID,
            target: head.uri,
            peer: request.peer,
            user: request.subject
        )
    }

    /// Joins the client to an upstream that has answered 101: the upstream's answer goes to the
    /// client as it is, then bytes flow both ways unchanged (extensions and subprotocols were
    /// negotiated end to end). Bytes the client sent after its request are handed on too.
    private func passThrough(
        context: ChannelHandlerContext,
        upstream: any Channel,
        responseHead: ByteBuffer,
        firstFrames: ByteBuffer,
        connectionID: UInt64,
        route: RouteConfiguration,
        user: String?
    ) {
        let (clientSide, upstreamSide) = GlueHandler.matchedPair(
            drain: .init(spread: dependencies.drainSpread, closeTimeout: route.limits.closeTimeout)
        )
        upstreamSide.follow(firstFrames)
        // Listed before the client can hear the upstream's 101.
        dependencies.sessions.registerProxied(
            id: connectionID,
            route: route.name,
            peer: PeerAddress.describe(peerAddress(context)),
            channel: context.channel,
            user: user.flatMap { SessionDirectory.Identity.isValidName($0) ? $0 : nil }
        )
        do {
            let pipeline = context.pipeline.syncOperations
            switch transport {
            case .http1(let decoder, let encoder, let requestGuard):
                pipeline.removeHandler(encoder, promise: nil)
                context.write(NIOAny(responseHead), promise: nil)
                context.writeAndFlush(NIOAny(firstFrames), promise: nil)
                try pipeline.addHandler(clientSide, position: .after(self))
                try upstream.pipeline.syncOperations.addHandler(upstreamSide)
                pipeline.removeHandler(requestGuard, promise: nil)
                pipeline.removeHandler(context: context, promise: nil)
                let (channel, handedOver) = (context.channel, context.eventLoop.makePromise(of: Void.self))
                pipeline.removeHandler(decoder, promise: handedOver)  // then bytes it held go on at once
                handedOver.futureResult.whenSuccess { channel.pipeline.fireChannelReadComplete() }
            case .http2(let codec):
                // The upstream's 101 becomes the stream's 200, with what it negotiated.
                var headers: HTTPHeaders = [:]
                for name in ["sec-websocket-protocol", "sec-websocket-extensions"] {
                    for value in WebSocketHandshake.responseHeaderValues(name, in: responseHead) {
                        headers.add(name: name, value: value)
                    }
                }
                context.writeAndFlush(
                    wrapOutboundOut(.head(HTTPResponseHead(version: .http2, status: .ok, headers: headers))),
                    promise: nil
                )
                let tunnel = try codec.beginTunnel(context: pipeline.context(handler: codec))
                try pipeline.addHandler(clientSide, position: .after(self))
                try upstream.pipeline.syncOperations.addHandler(upstreamSide)
                pipeline.removeHandler(context: context, promise: nil)
                tunnel.open(context: try pipeline.context(handler: tunnel))
                if firstFrames.readableBytes > 0 { context.channel.writeAndFlush(firstFrames, promise: nil) }
            }
            dependencies.metrics.upgraded(over: transport.name)
            dependencies.state.sessionOpened()
            if let metrics = dependencies.metrics.route(route.name) {
                metrics.didOpen()
                context.channel.closeFuture.whenComplete { _ in metrics.closed(code: "proxied") }
            }
            let state = dependencies.state
            context.channel.closeFuture.whenComplete { _ in state.sessionClosed() }
        } catch {
            dependencies.logger.error("pass-through failed", metadata: ["error": .string("\(error)")])
            upstream.close(promise: nil)
            context.close(promise: nil)
        }
    }

    /// Swaps the HTTP handlers for the WebSocket ones. Any bytes the client sent after its
    /// request (its first frames, even) are kept by the HTTP decoder and handed on when it is
    /// removed, so they reach the frame decoder in order.
    private func upgrade(
        context: ChannelHandlerContext,
        acceptance: UpgradeNegotiator.Acceptance,
        application: any WebSocketApplication,
        connectionID: UInt64,
        target: String,
        peer: String,
        user: String?
    ) {
        let route = acceptance.route
        let channel = context.channel
        let session = WebSocketSessionHandler(
            configuration: .init(
                routeName: route.name,
                limits: route.limits,
                deflate: acceptance.deflate,
                subprotocol: acceptance.subprotocol,
                drainSpread: dependencies.drainSpread,
                metrics: dependencies.metrics.route(route.name),
                overHTTP2: acceptance.overHTTP2,
                yield: dependencies.yield
            ),
            application: application,
            peer: peer,
            // Every line about the session names it as the admin API and the workers do, and
            // its request target (query secrets are redacted by the log handler).
            logger: dependencies.logger,
            connectionID: connectionID,
            target: target
        )
        let state = dependencies.state
        // Listed before the client can hear its 101: an admin request it prompts finds it.
        dependencies.sessions.register(
            id: connectionID,
            route: route.name,
            kind: route.kind.rawValue,
            session: session,
            channel: channel,
            subprotocol: acceptance.subprotocol,
            compression: acceptance.deflate != nil,
            user: user.flatMap { SessionDirectory.Identity.isValidName($0) ? $0 : nil }
        )
        do {
            let pipeline = context.pipeline.syncOperations
            switch transport {
            case .http1(let decoder, let encoder, let requestGuard):
                context.write(
                    wrapOutboundOut(
                        .head(
                            HTTPResponseHead(
                                version: .http1_1,
                                status: .switchingProtocols,
                                headers: acceptance.responseHeaders
                            )
                        )
                    ),
                    promise: nil
                )
                context.flush()
                // The session reads and writes frames itself: no codec between it and TLS. The
                // encoder goes first, so an application may write from `sessionDidOpen`; the
                // decoder last, handing the session the bytes it holds — then a read completes,
                // for the session flushes its answers to them when one does.
                pipeline.removeHandler(encoder, promise: nil)
                try channel.syncOptions?.setOption(
                    ChannelOptions.writeBufferWaterMark,
                    value: .init(low: route.limits.sendQueueBytes / 2, high: route.limits.sendQueueBytes)
                )
                try pipeline.addHandler(session, position: .after(self))
                pipeline.removeHandler(requestGuard, promise: nil)
                pipeline.removeHandler(context: context, promise: nil)
                let handedOver = channel.eventLoop.makePromise(of: Void.self)
                pipeline.removeHandler(decoder, promise: handedOver)
                handedOver.futureResult.whenSuccess { channel.pipeline.fireChannelReadComplete() }
            case .http2(let codec):
                // RFC 8441 §5: a 2xx answers the extended CONNECT; the stream is then the
                // WebSocket's, and the codec gives way to a tunnel framer below the session.
                context.writeAndFlush(
                    wrapOutboundOut(
                        .head(HTTPResponseHead(version: .http2, status: .ok, headers: acceptance.responseHeaders))
                    ),
                    promise: nil
                )
                // The tunnel first: the session may write as soon as it is added.
                let tunnel = try codec.beginTunnel(context: pipeline.context(handler: codec))
                try pipeline.addHandler(session, position: .after(self))
                pipeline.removeHandler(context: context, promise: nil)
                tunnel.open(context: try pipeline.context(handler: tunnel))
            }
            dependencies.metrics.upgraded(over: transport.name)
            state.sessionOpened()
            dependencies.metrics.route(route.name)?.didOpen()
            channel.closeFuture.whenComplete { _ in state.sessionClosed() }
        } catch {
            dependencies.logger.error(
                "upgrade failed",
                metadata: ["peer": .string(peer), "error": .string("\(error)")]
            )
            // Only the option and the session's own addition throw: no session opened, so the
            // application lets go of what it holds for it (a worker's slot, a proxy's upstream).
            application.upgradeAbandoned()
            context.close(promise: nil)
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

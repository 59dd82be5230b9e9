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

/// Carrying out an accepted upgrade: the byte pass-through to an upstream that answered 101, and
/// the WebSocket session's pipeline (HTTP/1.1 and HTTP/2 alike).
extension HTTPConnectionHandler {
    /// Joins the client to an upstream that has answered 101: the upstream's answer goes to the
    /// client as it is, then bytes flow both ways unchanged (extensions and subprotocols were
    /// negotiated end to end). Bytes the client sent after its request are handed on too.
    func passThrough(
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
    func upgrade(
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
            configuration: sessionConfiguration(acceptance),
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
            try install(session, context: context, acceptance: acceptance)
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

    /// The session's settings: the route's limits, what was negotiated, the gateway's drain.
    private func sessionConfiguration(
        _ acceptance: UpgradeNegotiator.Acceptance
    ) -> WebSocketSessionHandler.Configuration {
        .init(
            routeName: acceptance.route.name,
            limits: acceptance.route.limits,
            deflate: acceptance.deflate,
            subprotocol: acceptance.subprotocol,
            drainSpread: dependencies.drainSpread,
            metrics: dependencies.metrics.route(acceptance.route.name),
            overHTTP2: acceptance.overHTTP2,
            yield: dependencies.yield
        )
    }

    /// Answers the upgrade and puts the session where this handler was, for HTTP/1.1 (101,
    /// then the session straight on the TLS or TCP bytes) and HTTP/2 (200, then a tunnel
    /// framer on the stream below the session) alike. Only the write-buffer option and the
    /// session's own addition throw.
    private func install(
        _ session: WebSocketSessionHandler,
        context: ChannelHandlerContext,
        acceptance: UpgradeNegotiator.Acceptance
    ) throws {
        let channel = context.channel
        let route = acceptance.route
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
    }
}

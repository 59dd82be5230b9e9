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

/// Admitting an upgrade request: the token, the route's verdict, and the refusals that answer it.
extension HTTPConnectionHandler {
    /// Asks the route's service whether (and to what) to upgrade; answers with its refusal, or
    /// upgrades.
    func decide(context: ChannelHandlerContext, acceptance: UpgradeNegotiator.Acceptance, head: HTTPRequestHead) {
        guard let service = snapshot.services[acceptance.route.name] else {
            return refuseUpgrade(context: context, .serviceUnavailable, "route not available")
        }
        guard admitClient(context: context) else { return }
        // The slot is held for the connection's life, or given back if it does not upgrade.
        let limiter = dependencies.limiter
        let clientBytes = answeringClient.bytes
        let releaseSlot: @Sendable () -> Void = { limiter.release(clientBytes) }
        let request = upgradeRequest(context: context, acceptance: acceptance, head: head)
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
        checked.futureResult.whenComplete { result in
            let (handler, context) = loopBound.value
            switch result {
            case .success(let verified):
                var request = request
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
                    peer: request.peer
                )
            }
        }
    }

    /// Takes a connection slot for the client, or answers 503 (the gateway's or its address's
    /// connection limit) or 429 (its new-connection rate) and returns false.
    private func admitClient(context: ChannelHandlerContext) -> Bool {
        switch dependencies.limiter.admit(answeringClient.bytes) {
        case .admitted:
            return true
        case .full(let overall):
            dependencies.metrics.limitHit(overall ? "connections" : "connections_per_ip")
            let why = overall ? "the gateway is at its connection limit" : "too many connections from your address"
            refuseUpgrade(context: context, .serviceUnavailable, why, headers: ["Retry-After": "5"])
        case .tooFast(let seconds):
            dependencies.metrics.limitHit("connections_per_second_per_ip")
            refuseUpgrade(
                context: context,
                .tooManyRequests,
                "too many new connections from your address",
                headers: ["Retry-After": String(seconds)]
            )
        }
        return false
    }

    /// What the route's service hears of the upgrade: the connection's id, the request's
    /// fields, the client's address (the proxy's word for it, behind one) and its TLS.
    private func upgradeRequest(
        context: ChannelHandlerContext,
        acceptance: UpgradeNegotiator.Acceptance,
        head: HTTPRequestHead
    ) -> UpgradeRequest {
        // On an HTTP/2 stream, TLS is the connection's (the stream channel's parent); an
        // accepted connection's parent is the listening socket.
        var connection = context.channel
        if case .http2 = transport, let parent = context.channel.parent { connection = parent }
        let tlsHandler = try? connection.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)
        let client = answeringClient
        let fromProxy = client.text != peerAddress(context)?.ipAddress
        var headers = head.headers.compactMap { field -> (String, String)? in
            field.name.hasPrefix(":") ? nil : (field.name.lowercased(), field.value)
        }
        if acceptance.overHTTP2 {
            // An HTTP/2 client sends no key; an HTTP/1.1 upstream behind a `bytes` proxy needs
            // one, and its accept value is checked against it there.
            headers.append(("sec-websocket-key", WebSocketHandshake.randomKey()))
        }
        var request = UpgradeRequest(
            connectionID: dependencies.sessions.ids.next(),
            route: acceptance.route,
            target: head.uri,
            headers: headers,
            peer: fromProxy ? client.text : PeerAddress.describe(peerAddress(context)),
            subprotocol: acceptance.subprotocol,
            tlsVersion: tlsHandler?.tlsVersion.map { "\($0)" }
        )
        request.clientSubject = tlsHandler?.peerCertificate.flatMap(CertificateMaterial.subject(of:))
        return request
    }

    /// 401 for a missing or refused token: the reason, never the token, in the answer and the log.
    func refuseToken(_ failure: AuthFailure, context: ChannelHandlerContext, peer: String) {
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
    func refuseUpgrade(
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
    func ask(
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
    func accepted(
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
}

import GatewayCore
import GatewayWebSocket
import Logging
import NIOCore
import NIOWebSocket

/// One connection of a `frames` proxy route: the client's WebSocket ends in a session of the
/// gateway's own (limits, keepalive, compression, metrics, admin API, drain — as on any route),
/// the upstream's ends here, in a client-side WebSocket on the upstream channel, and whole
/// messages cross between the two.
///
/// It is both ends of the relay: the session's application (client side) and the last handler of
/// the upstream channel, after NIOWebSocket's frame decoder and encoder (the cold side: the
/// upstream is local and there is one such leg per connection). Both channels share an event
/// loop. Back-pressure runs both ways: the client is not read while the upstream is not taking
/// writes, and the upstream is not read while the client is not.
final class FramesRelay: ChannelDuplexHandler, WebSocketApplication {
    typealias InboundIn = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let limits: WebSocketLimits
    private let lostCloseCode: WebSocketErrorCode
    private let logger: Logger
    private var state: FramesRelayState
    private var upstream: ChannelHandlerContext?
    private var session: WebSocketSessionHandler?
    /// Messages from the upstream that came before the client's session opened (those sent right
    /// behind its 101); reads stop until it has.
    private var held: [WebSocketMessage] = []
    /// A fragmented upstream message being put together.
    private var assembling: (kind: WebSocketMessage.Kind, data: ByteBuffer)?
    private var readPending = false
    private var keepaliveTimer: Scheduled<Void>?
    private var closeTimer: Scheduled<Void>?

    init(limits: WebSocketLimits, lostCloseCode: WebSocketErrorCode, logger: Logger) {
        self.limits = limits
        self.lostCloseCode = lostCloseCode
        self.logger = logger
        self.state = FramesRelayState(now: .now())
    }

    /// The largest frame the upstream may send: a whole message, as the route allows the client.
    static func maxFrameSize(for limits: WebSocketLimits) -> Int {
        min(limits.maxMessageBytes, Int(UInt32.max))
    }

    // MARK: Upstream channel

    func handlerAdded(context: ChannelHandlerContext) {
        upstream = context
        scheduleKeepalive(in: limits.pingInterval)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        keepaliveTimer?.cancel()
        closeTimer?.cancel()
        upstream = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        state.heard(now: .now())
        guard state.readsUpstreamFrames else { return }
        if frame.maskKey != nil { return failUpstream(.protocolError, "masked frame") }
        if frame.rsv1 || frame.rsv2 || frame.rsv3 { return failUpstream(.protocolError, "reserved bits set") }
        switch frame.opcode {
        case .text, .binary:
            guard assembling == nil else { return failUpstream(.protocolError, "new message inside a fragmented one") }
            let kind: WebSocketMessage.Kind = frame.opcode == .text ? .text : .binary
            if frame.fin {
                deliver(WebSocketMessage(kind: kind, data: frame.data))
            } else {
                assembling = (kind, frame.data)
            }
        case .continuation:
            guard var message = assembling else {
                return failUpstream(.protocolError, "continuation without a message")
            }
            assembling = nil
            guard message.data.readableBytes + frame.data.readableBytes <= limits.maxMessageBytes else {
                return failUpstream(.messageTooLarge, "message larger than \(limits.maxMessageBytes) bytes")
            }
            var more = frame.data
            message.data.writeBuffer(&more)
            if frame.fin {
                deliver(WebSocketMessage(kind: message.kind, data: message.data))
            } else {
                assembling = message
            }
        case .ping:
            context.writeAndFlush(wrapOutboundOut(Self.frame(.pong, frame.data)), promise: nil)
        case .pong:
            break
        case .connectionClose:
            upstreamSentClose(frame.data)
        default:
            failUpstream(.protocolError, "reserved opcode")
        }
    }

    /// A whole message from the upstream, to the client (or held until its session opens).
    private func deliver(_ message: WebSocketMessage) {
        guard state.relaysMessages else { return }
        if message.kind == .text, !UTF8Validator.isValid(message.data) {
            return failUpstream(.dataInconsistentWithMessage, "text message not UTF-8")
        }
        guard let session else { return held.append(message) }
        session.send(message)
    }

    private func upstreamSentClose(_ payload: ByteBuffer) {
        var payload = payload
        var code: WebSocketErrorCode?
        var reason = ""
        if payload.readableBytes == 1 { return failUpstream(.protocolError, "close payload of one byte") }
        if let value = payload.readInteger(as: UInt16.self) {
            guard WebSocketErrorCode.isValidOnWire(value) else {
                return failUpstream(.protocolError, "invalid close code \(value)")
            }
            guard UTF8Validator.isValid(payload) else { return failUpstream(.protocolError, "close reason not UTF-8") }
            code = WebSocketErrorCode(code: value)
            reason = String(buffer: payload)
        }
        switch state.upstreamSentClose() {
        case .answerAndRelay:
            // Our answer echoes the code (RFC 6455 §5.5.1); the upstream, being the server, ends
            // TCP, or we do after the close timeout.
            writeClose(code: code, reason: "")
            closeUpstreamLater()
            // The client learns the upstream's own code and reason (no code: 1000).
            if let session {
                session.close(code: code ?? .normalClosure, reason: reason)
            } else {
                state.clientCloseDeferred(code: code ?? .normalClosure, reason: reason)
            }
        case .closeTCP:
            upstream?.close(promise: nil)
        case .ignore:
            break
        }
    }

    /// The upstream broke the protocol or a limit: it gets a Close with `code` and loses TCP; the
    /// client is closed with the route's `lost_close_code`.
    private func failUpstream(_ code: WebSocketErrorCode, _ reason: String) {
        logger.warning(
            "upstream failed the websocket",
            metadata: ["code": .stringConvertible(code.code), "reason": .string(reason)]
        )
        guard state.upstreamFailed() else { return }
        assembling = nil
        writeClose(code: code, reason: reason)
        upstream?.close(promise: nil)
        closeClient(code: lostCloseCode, reason: "upstream \(reason)")
    }

    func channelInactive(context: ChannelHandlerContext) {
        keepaliveTimer?.cancel()
        closeTimer?.cancel()
        assembling = nil
        if state.upstreamClosed() {
            logger.info("upstream connection lost")
            closeClient(code: lostCloseCode, reason: "upstream connection lost")
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? NIOWebSocketError {
            switch error {
            case .invalidFrameLength:
                return failUpstream(.messageTooLarge, "message larger than \(limits.maxMessageBytes) bytes")
            case .fragmentedControlFrame, .multiByteControlFrameLength:
                return failUpstream(.protocolError, "malformed control frame")
            }
        }
        logger.debug("upstream connection error", metadata: ["error": .string("\(error)")])
        context.close(promise: nil)
    }

    /// Reads from the upstream only while the client takes what is sent to it; before the
    /// client's session opens, not at all; once the client is gone, freely (for the upstream's
    /// Close).
    func read(context: ChannelHandlerContext) {
        if mayRead {
            context.read()
        } else {
            readPending = true
        }
    }

    private var mayRead: Bool {
        if let session { return session.isWritable || !session.isOpen }
        return state.phase != .open
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { session?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    private func readIfPending() {
        guard readPending, let upstream, mayRead else { return }
        readPending = false
        upstream.read()
    }

    // MARK: Client session

    func sessionDidOpen(_ session: WebSocketSessionHandler) {
        self.session = session
        for message in held { session.send(message) }
        held = []
        if let (code, reason) = state.takeDeferredClientClose() {
            session.close(code: code, reason: reason)
        }
        readIfPending()
    }

    func session(_ session: WebSocketSessionHandler, didReceive message: WebSocketMessage) {
        guard state.relaysMessages, let upstream else { return }
        let opcode: WebSocketOpcode = message.kind == .text ? .text : .binary
        upstream.writeAndFlush(wrapOutboundOut(Self.frame(opcode, message.data)), promise: nil)
        if !upstream.channel.isWritable { session.pauseReading() }
    }

    func sessionWritabilityChanged(_ session: WebSocketSessionHandler) {
        readIfPending()
    }

    /// The client's session ended: the upstream gets a closing handshake. A client's own Close is
    /// relayed with its code and reason; one the gateway started (a limit, a drain, an admin
    /// close) reaches the upstream as 1001 with the reason the client was given.
    func sessionDidClose(_ session: WebSocketSessionHandler, code: WebSocketErrorCode?) {
        self.session = nil
        held = []
        let statistics = session.statistics
        guard state.clientClosed() else { return }
        if statistics.closedBy == "client", let received = statistics.closeCodeReceived {
            writeClose(code: received, reason: session.closeReason)
        } else if let code, code != .goingAway {
            writeClose(code: .goingAway, reason: "client closed with \(code.code) \(session.closeReason)")
        } else {
            writeClose(code: .goingAway, reason: code == nil ? "client gone" : session.closeReason)
        }
        closeUpstreamLater()
        readIfPending()
    }

    func upgradeAbandoned() {
        _ = state.clientClosed()
        upstream?.close(promise: nil)
    }

    private func closeClient(code: WebSocketErrorCode, reason: String) {
        if let session {
            session.close(code: code, reason: reason)
        } else {
            state.clientCloseDeferred(code: code, reason: reason)
        }
    }

    // MARK: Frames and timers

    private static func frame(_ opcode: WebSocketOpcode, _ data: ByteBuffer) -> WebSocketFrame {
        WebSocketFrame(fin: true, opcode: opcode, maskKey: .random(), data: data)
    }

    private func writeClose(code: WebSocketErrorCode?, reason: String) {
        guard let upstream else { return }
        var payload = upstream.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        if let code {
            payload.write(webSocketErrorCode: code)
            payload.writeString(WebSocketSessionHandler.utf8Prefix(of: reason, maxBytes: 123))
        }
        upstream.writeAndFlush(wrapOutboundOut(Self.frame(.connectionClose, payload)), promise: nil)
    }

    /// The upstream, as the server, ends TCP after the closing handshake; if it does not within
    /// the route's close timeout, the gateway does.
    private func closeUpstreamLater() {
        guard let upstream, closeTimer == nil else { return }
        closeTimer = upstream.eventLoop.assumeIsolated().scheduleTask(in: limits.closeTimeout) { [self] in
            self.upstream?.close(promise: nil)
        }
    }

    /// Keepalive towards the upstream, with the route's ping interval and pong timeout: an
    /// upstream that stops answering is treated as lost.
    private func scheduleKeepalive(in delay: TimeAmount) {
        guard let upstream else { return }
        keepaliveTimer = upstream.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
            self.keepaliveTick()
        }
    }

    private func keepaliveTick() {
        switch state.keepaliveFired(now: .now(), interval: limits.pingInterval, timeout: limits.pongTimeout) {
        case .wait(let delay):
            scheduleKeepalive(in: delay)
        case .ping(let delay):
            if let upstream {
                upstream.writeAndFlush(
                    wrapOutboundOut(Self.frame(.ping, upstream.channel.allocator.buffer(capacity: 0))),
                    promise: nil
                )
            }
            scheduleKeepalive(in: delay)
        case .lost:
            logger.info("upstream not answering pings")
            upstream?.close(promise: nil)
            closeClient(code: lostCloseCode, reason: "upstream not answering")
        case .none:
            break
        }
    }
}

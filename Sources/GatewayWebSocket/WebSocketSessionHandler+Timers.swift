import Logging
import NIOCore
import NIOWebSocket

/// The session's timers (keepalive, idle check, closing handshake, drain) and the drain events
/// that start a close.
extension WebSocketSessionHandler {
    // MARK: Timers

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        let reason: DrainEvent.Reason?
        if let drain = event as? DrainEvent {
            reason = drain.reason
        } else {
            reason = event is ChannelShouldQuiesceEvent ? .restart : nil
        }
        if let reason {
            // One drain per session: a second event (a reload's, then the shutdown's) changes
            // nothing.
            guard drainReason == nil else { return }
            drainReason = reason
            let spread = configuration.drainSpread.nanoseconds
            if spread > 0 {
                schedule(.drain, in: .nanoseconds(Int64.random(in: 0..<spread)))
            } else {
                close(code: WebSocketErrorCode.goingAway, reason: reason.text)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// What the session's timers run. A callback handler holding the session, rather than NIO's
    /// `scheduleTask`, which makes a promise and a closure context for every timer: an idle
    /// connection always has two timers pending (keepalive and idle check).
    struct Timer: NIOScheduledCallbackHandler {
        enum Kind { case keepalive, idle, close, drain, inflate }
        let session: WebSocketSessionHandler
        let kind: Kind

        func handleScheduledCallback(eventLoop: some EventLoop) {
            switch kind {
            case .keepalive: session.keepaliveTick()
            case .idle: session.idleCheck()
            case .close: session.closeTimerFired()
            case .inflate: session.inflateTimerFired()
            case .drain:
                session.close(code: WebSocketErrorCode.goingAway, reason: (session.drainReason ?? .restart).text)
            }
        }
    }

    /// Runs `kind` after `delay` on the session's event loop (nil once the channel is gone or the
    /// loop is shutting down: nothing is left to time).
    @discardableResult
    func schedule(_ kind: Timer.Kind, in delay: TimeAmount) -> NIOScheduledCallback? {
        guard let context else { return nil }
        return try? context.eventLoop.assumeIsolated().scheduleCallback(
            in: delay,
            handler: Timer(session: self, kind: kind)
        )
    }

    func scheduleKeepalive(in delay: TimeAmount) {
        keepaliveTimer = schedule(.keepalive, in: delay)
    }

    func keepaliveTick() {
        guard let context else { return }
        let action = state.keepaliveFired()
        if action != .none { deflate?.releaseIdleContexts(midMessage: partial != nil) }
        // After the switch: the ping written now must not leave a buffer behind on an idle session.
        defer {
            if action != .none {
                output.releaseIdle()
                spare = nil
            }
        }
        switch action {
        case .wait(let delay):
            scheduleKeepalive(in: delay)
        case .ping(let delay):
            writeFrame(.ping, payload: ByteBuffer(), context: context)
            flushOutput(context: context)
            scheduleKeepalive(in: delay)
        case .abort:
            logger.debug("websocket keepalive timeout", metadata: lineMetadata([:]))
            var payload = context.channel.allocator.buffer(capacity: 2)
            payload.write(webSocketErrorCode: .unexpectedServerError)
            writeFrame(.connectionClose, payload: payload, context: context)
            flushOutput(context: context)
            context.close(promise: nil)
        case .none:
            break
        }
    }

    func scheduleIdleCheck(in delay: TimeAmount) {
        idleTimer = schedule(.idle, in: delay)
    }

    func idleCheck() {
        switch state.idleTimerFired() {
        case .wait(let delay): scheduleIdleCheck(in: delay)
        case .close(let code, let reason): close(code: code, reason: reason)
        case .none: break
        }
    }
}

import GatewayCore
import GatewayWebSocket
import NIOCore
import NIOWebSocket

/// Joins two channels on the same event loop: what one reads the other writes, with
/// back-pressure (a side that cannot write stops the other from reading) and close propagation.
/// The pass-through of a proxy route.
///
/// Back-pressure switches the other side's `autoRead` when writability changes, instead of
/// intercepting every `read()`: an inbound-only handler is skipped by the outbound events, so
/// the read NIO issues after each batch does not pass through it (measured on the proxy route's
/// round trips, where every event counts).
///
/// Bytes pass unchanged, but each side follows the frame boundaries of what it reads
/// (`WebSocketFrameScanner`, headers only). That is what lets a drain close a proxied connection
/// the way a session is closed: at the next boundary in each direction the gateway puts its own
/// close frame (1001) — unmasked to the client, masked to the upstream, as each peer expects —
/// then drops what follows, waits for both peers' closes, and closes both connections. A peer
/// that never answers is cut after the route's close timeout.
final class GlueHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Which peer this side reads from.
    enum Side { case client, upstream }

    /// What a drain needs: how long to spread the closes over, how long to wait for the peers.
    struct DrainSettings {
        var spread: TimeAmount
        var closeTimeout: TimeAmount
    }

    private let side: Side
    private let drain: DrainSettings
    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    /// The frames of what this side reads.
    private var frames = WebSocketFrameScanner()
    /// The closing handshake of the direction this side reads (its peer → the partner's peer).
    private var closing = false
    /// A close frame has gone out in this direction: the peer's own, passed on, or ours.
    private var sentClose = false
    private var closeTimer: Scheduled<Void>?
    private var drainTimer: Scheduled<Void>?
    /// Why this pair drains (the reason of the 1001 sent both ways), once it does.
    fileprivate(set) var drainReason: DrainEvent.Reason?

    private init(side: Side, drain: DrainSettings) {
        self.side = side
        self.drain = drain
    }

    static func matchedPair(drain: DrainSettings) -> (client: GlueHandler, upstream: GlueHandler) {
        let client = GlueHandler(side: .client, drain: drain)
        let upstream = GlueHandler(side: .upstream, drain: drain)
        client.partner = upstream
        upstream.partner = client
        return (client, upstream)
    }

    /// Bytes the upstream sent with its 101, after the head: the first frames toward the client.
    func follow(_ bytes: ByteBuffer) {
        frames.scan(bytes)
        if frames.closeFrames > 0 { sentClose = true }
    }

    private func partnerWrite(_ data: ByteBuffer) { context?.write(NIOAny(data), promise: nil) }
    private func partnerFlush() { context?.flush() }
    private func partnerClose() { context?.close(promise: nil) }

    /// Reads on this side go on only while the partner can write.
    private func setReading(_ reading: Bool) {
        guard let channel = context?.channel else { return }
        try? channel.syncOptions?.setOption(.autoRead, value: reading)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // The second of the pair to arrive settles both directions.
        guard let partner, let partnerContext = partner.context else { return }
        if !context.channel.isWritable { partner.setReading(false) }
        if !partnerContext.channel.isWritable { setReading(false) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        closeTimer?.cancel()
        drainTimer?.cancel()
        partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard closing else {
            frames.scan(bytes)
            if frames.closeFrames > 0 { sentClose = true }
            partner?.partnerWrite(bytes)
            return
        }
        if !sentClose {
            // Up to the boundary the frame in flight still goes through; then our close.
            let before = frames.scan(bytes, untilBoundary: true)
            if before > 0, let head = bytes.readSlice(length: before) { partner?.partnerWrite(head) }
            if frames.atBoundary { sendClose() }
        }
        // The rest is dropped: only a close from this side's peer matters now.
        frames.scan(bytes)
        if frames.isBroken {
            closeBoth()
            return
        }
        finishIfClosed()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.partnerFlush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.partnerClose()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if !closing { partner?.setReading(context.channel.isWritable) }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        let reason = (event as? DrainEvent)?.reason ?? (event is ChannelShouldQuiesceEvent ? .restart : nil)
        guard let reason, side == .client else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        // One drain: a second event (a reload's, then the shutdown's) changes nothing.
        guard drainReason == nil else { return }
        drainReason = reason
        partner?.drainReason = reason
        // Spread like the sessions' closes, so clients do not all reconnect at the same moment.
        let spread = drain.spread.nanoseconds
        let delay = spread > 0 ? TimeAmount.nanoseconds(Int64.random(in: 0..<spread)) : .zero
        drainTimer = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
            self.startClosing()
        }
    }

    // MARK: Closing

    /// Both directions start their closing handshake; a peer that does not finish it in time
    /// is cut.
    private func startClosing() {
        guard !closing, let partner, let context else { return }
        closing = true
        partner.closing = true
        // Nothing is forwarded any more, so nothing needs holding back: read to hear the closes.
        setReading(true)
        partner.setReading(true)
        if frames.isBroken || partner.frames.isBroken {
            closeBoth()
            return
        }
        if !sentClose && frames.atBoundary { sendClose() }
        if !partner.sentClose && partner.frames.atBoundary { partner.sendClose() }
        closeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: drain.closeTimeout) { [self] in
            self.closeBoth()
        }
        finishIfClosed()
    }

    /// Our close frame into this direction: to the upstream masked (we are its client), to the
    /// client unmasked (we are its server).
    private func sendClose() {
        guard let partner, let partnerContext = partner.context else { return }
        sentClose = true
        let reason = Array((drainReason ?? .restart).text.utf8)
        var frame = partnerContext.channel.allocator.buffer(capacity: 2 + 4 + 2 + reason.count)
        frame.writeInteger(UInt8(0x88))
        let code = WebSocketErrorCode.goingAway.code
        if side == .client {
            // Toward the upstream.
            frame.writeInteger(UInt8(0x80 | (2 + reason.count)))
            let mask = (0..<4).map { _ in UInt8.random(in: 0...255) }
            frame.writeBytes(mask)
            let payload = [UInt8(code >> 8), UInt8(code & 0xFF)] + reason
            frame.writeBytes(payload.enumerated().map { $0.element ^ mask[$0.offset % 4] })
        } else {
            frame.writeInteger(UInt8(2 + reason.count))
            frame.writeInteger(code)
            frame.writeBytes(reason)
        }
        partner.partnerWrite(frame)
        partner.partnerFlush()
    }

    /// Both closing handshakes are done: our closes went out and both peers answered.
    private func finishIfClosed() {
        guard let partner, closing, partner.closing else { return }
        let done = sentClose && partner.sentClose && frames.closeFrames > 0 && partner.frames.closeFrames > 0
        if done { closeBoth() }
    }

    private func closeBoth() {
        closeTimer?.cancel()
        partner?.closeTimer?.cancel()
        // The server side closes first (RFC 6455 §7.1.1): the client connection, then the upstream.
        let client = side == .client ? self : partner
        let upstream = side == .client ? partner : self
        client?.context?.close(promise: nil)
        upstream?.context?.close(promise: nil)
    }
}

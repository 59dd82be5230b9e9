import GatewayCore
import GatewayMetrics
import Logging
import NIOCore
import NIOWebSocket

/// One WebSocket session, after the upgrade: the frames (read in place by
/// `WebSocketFrameParser`, written by `WebSocketFrameWriter`), RFC 6455's rules, RFC 7692
/// compression, keepalive and timeouts, and the hand-off of whole messages to a
/// `WebSocketApplication`.
///
/// A channel handler rather than a task with async sequences: an idle session is this object,
/// its timers and nothing else, and a message costs no task hop. Writes made while handling a
/// read are flushed once at `channelReadComplete`, as one buffer.
///
/// Outbound, it accepts `WebSocketMessage`s written into the pipeline by anyone (other event
/// loops included, through `channel.writeAndFlush`).
public final class WebSocketSessionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundIn = WebSocketMessage
    public typealias OutboundOut = ByteBuffer
    typealias Frame = WebSocketFrameParser.Frame

    public struct Configuration: Sendable {
        public var routeName: String
        public var limits: WebSocketLimits
        public var deflate: PerMessageDeflateParameters?
        public var subprotocol: String?
        /// On a drain, the session closes (1001) at a random moment within this window.
        public var drainSpread: TimeAmount
        /// The route's counters (none in unit tests that do not look at them).
        public var metrics: RouteMetrics?
        /// The session runs on an HTTP/2 stream (RFC 8441), not a connection of its own: the
        /// access line says `http=h2`.
        public var overHTTP2: Bool
        /// Where a session that has had its share of the event loop waits for the loop's next
        /// poll (`framesPerTurn`); without one (unit tests) it waits for the next task.
        public var yield: EventLoopYield?
        public init(
            routeName: String,
            limits: WebSocketLimits,
            deflate: PerMessageDeflateParameters?,
            subprotocol: String?,
            drainSpread: TimeAmount = .zero,
            metrics: RouteMetrics? = nil,
            overHTTP2: Bool = false,
            yield: EventLoopYield? = nil
        ) {
            self.yield = yield
            self.metrics = metrics
            self.overHTTP2 = overHTTP2
            self.routeName = routeName
            self.limits = limits
            self.deflate = deflate
            self.subprotocol = subprotocol
            self.drainSpread = drainSpread
        }
    }

    public let configuration: Configuration
    public var statistics: SessionStatistics { state.statistics }
    public let peer: String
    public let openedAt: NIODeadline
    let application: any WebSocketApplication
    let logger: Logger
    /// The connection's number and request target, put on each line the session logs when the
    /// line is made: a Logger copy carrying them would keep a metadata dictionary (~150 bytes)
    /// on every idle connection.
    private let connectionID: UInt64?
    private let target: String?
    var context: ChannelHandlerContext?
    /// The session's rules: frame order, closing handshake, keepalive, idle, rate.
    var state: WebSocketSessionState
    /// The bytes of the message being reassembled (`state.assembling` says what it is).
    var partial: ByteBuffer?
    var utf8 = UTF8Validator()
    let deflate: PerMessageDeflate?
    let parser: WebSocketFrameParser
    /// The start of a frame whose end has not been read yet, copied out of NIO's read buffer.
    var pendingInput: ByteBuffer?
    /// Set when the bytes broke the framing rules: nothing more is read as frames.
    var inputBroken = false
    /// The UTF-8 check of the text frame in `pendingInput` while it arrives: how many of its
    /// payload bytes were checked, and the validator after them. RFC 6455 §8.1 fails a
    /// connection as soon as a text message is known not to be UTF-8, so a large frame fails at
    /// its first bad byte, not when its last one arrives (Autobahn 6.4.3 and 6.4.4). Nil when no
    /// text frame is half-read.
    var arrivingText: (checked: Int, validator: UTF8Validator)?
    var output = WebSocketFrameWriter()
    /// The last message's buffer, for the next one (`messageBuffer(capacity:)`).
    var spare: ByteBuffer?
    /// What waits for the frames in `output` to be written (writes from the pipeline that
    /// came with a promise, the close handshake's).
    var outputPromise: EventLoopPromise<Void>?
    var needsFlush = false
    /// True between the first `channelRead` of a batch and its `channelReadComplete`: writes made
    /// meanwhile are flushed once, at the end of the batch.
    var inReadBatch = false
    var readPending = false
    var readingPaused = false
    /// Pending while the client is over its inflate rate: the input after the frame that put it
    /// there waits in `pendingInput`, and nothing more is read until the timer resumes it.
    var inflateTimer: NIOScheduledCallback?
    /// Set once the session has had its share of the event loop (`framesPerTurn`), until its
    /// next turn: the input waits in `pendingInput`, nothing more is read.
    var turnEnded = false
    /// The next turn is scheduled (the batch that ended the last one is over).
    var turnScheduled = false
    /// Frames handled since the event loop last came to the session: reset when a read batch
    /// completes and when a new turn starts.
    var framesThisTurn = 0
    var keepaliveTimer: NIOScheduledCallback?
    var idleTimer: NIOScheduledCallback?
    private var closeTimer: NIOScheduledCallback?
    /// Set once a drain began (shutdown or reload), with the reason its 1001 will carry.
    var drainReason: DrainEvent.Reason?
    /// Pushed messages waiting for the client to take what is already queued (`drop-oldest`
    /// policy only), and their bytes: bounded by `send_queue_bytes`. It starts with one slot and
    /// goes back to one when drained: most sessions never backlog, and the default 16 slots cost
    /// ~770 bytes on every idle connection.
    var backlog = CircularBuffer<WebSocketMessage>(initialCapacity: 1)
    var backlogBytes = 0

    /// The reason that goes with the close code the application is told: the client's, when it
    /// started the closing handshake; otherwise the one sent to it ("" when there was none).
    public var closeReason: String { state.closeReason }

    public init(
        configuration: Configuration,
        application: any WebSocketApplication,
        peer: String,
        logger: Logger,
        connectionID: UInt64? = nil,
        target: String? = nil
    ) {
        self.configuration = configuration
        self.application = application
        self.peer = peer
        self.logger = logger
        self.connectionID = connectionID
        self.target = target
        self.deflate = configuration.deflate.map(PerMessageDeflate.init(parameters:))
        // A frame may carry a whole message (plus compression slack): the frame limit is the
        // message limit, and the reassembled size is checked on its own.
        self.parser = WebSocketFrameParser(
            maxFrameBytes: min(configuration.limits.maxMessageBytes + 1024, Int(UInt32.max))
        )
        self.openedAt = .now()
        self.state = WebSocketSessionState(
            limits: configuration.limits,
            compression: configuration.deflate != nil,
            now: openedAt
        )
    }

    /// Whether the outbound and the message buffer are held (tests check that idle sessions hold
    /// neither after a keepalive tick).
    public var heldBuffers: (output: Bool, message: Bool) { (output.isHoldingBuffer, spare != nil) }

    /// Whether zlib contexts are currently allocated (tests check that idle sessions hold none).
    public var compressionContexts: (inflater: Bool, deflater: Bool)? {
        deflate?.allocatedContexts
    }

    // MARK: Lifecycle

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { start(context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard keepaliveTimer == nil, state.isOpen else { return }
        scheduleKeepalive(in: configuration.limits.pingInterval)
        if configuration.limits.idleTimeout > .zero { scheduleIdleCheck(in: configuration.limits.idleTimeout) }
        application.sessionDidOpen(self)
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimers()
        failOutputPromise()
        self.context = nil
    }

    public func channelInactive(context: ChannelHandlerContext) {
        cancelTimers()
        discardBacklog()
        failOutputPromise()
        output = WebSocketFrameWriter()
        spare = nil
        pendingInput = nil
        arrivingText = nil
        partial = nil
        if state.channelClosed() { reportClose() }
        context.fireChannelInactive()
    }

    /// The timers capture the handler strongly and are cancelled here, when the channel goes. A
    /// weak capture would give the handler a side table, and every retain and release of it
    /// (several per message) would take the runtime's slow path: 3% of a worker route's time.
    private func cancelTimers() {
        keepaliveTimer?.cancel()
        idleTimer?.cancel()
        closeTimer?.cancel()
        inflateTimer?.cancel()
        inflateTimer = nil
        keepaliveTimer = nil
        idleTimer = nil
        closeTimer = nil
    }

    private func reportClose() {
        let code = state.closeCode
        application.sessionDidClose(self, code: code)
        configuration.metrics?.closed(code: code.map { String($0.code) } ?? "none")
        let duration = NIODeadline.now() - openedAt
        logger.info(
            "websocket closed",
            metadata: lineMetadata([
                "route": .string(configuration.routeName),
                "duration_ms": .stringConvertible(duration.nanoseconds / 1_000_000),
                "messages_in": .stringConvertible(statistics.messagesIn),
                "messages_out": .stringConvertible(statistics.messagesOut),
                "bytes_in": .stringConvertible(statistics.bytesIn),
                "bytes_out": .stringConvertible(statistics.bytesOut),
                "close_code": .string(code.map { String($0.code) } ?? "none"),
                "closed_by": .string(statistics.closedBy ?? "tcp"),
                "compression": .string(deflate == nil ? "off" : "on"),
                "dropped": .stringConvertible(statistics.messagesDropped),
                "http": .string(configuration.overHTTP2 ? "h2" : "http/1.1"),
            ])
        )
    }

    /// A line's metadata with the session's own (peer, connection, target) added.
    func lineMetadata(_ metadata: Logger.Metadata) -> Logger.Metadata {
        var metadata = metadata
        metadata["peer"] = .string(peer)
        if let connectionID { metadata["conn"] = .stringConvertible(connectionID) }
        if let target { metadata["target"] = .string(target) }
        return metadata
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("websocket connection error", metadata: lineMetadata(["error": .string("\(error)")]))
        context.close(promise: nil)
    }

    /// Starts the closing handshake with `code`: sends Close, discards further data, and drops TCP
    /// when the client answers or `closeTimeout` passes.
    public func close(code: WebSocketErrorCode, reason: String = "") {
        // Control frames carry at most 125 bytes (§5.5), and the reason stays UTF-8.
        let sent = Self.utf8Prefix(of: reason, maxBytes: 123)
        guard let context, state.closeRequested(code: code, reason: sent) else { return }
        partial = nil
        discardBacklog()
        var payload = context.channel.allocator.buffer(capacity: 2 + sent.utf8.count)
        payload.write(webSocketErrorCode: code)
        payload.writeString(sent)
        writeFrame(.connectionClose, payload: payload, context: context)
        flushOutput(context: context)
        needsFlush = false
        closeTimer = schedule(.close, in: configuration.limits.closeTimeout)
    }

    func closeTimerFired() {
        guard let context, state.closeTimerFired() else { return }
        context.close(promise: nil)
    }

    func rateLimited() {
        configuration.metrics?.rateLimited()
        fail(.policyViolation, "message rate limit")
    }

    func fail(_ code: WebSocketErrorCode, _ reason: String) {
        logger.debug(
            "websocket failed",
            metadata: lineMetadata(["code": .stringConvertible(code.code), "reason": .string(reason)])
        )
        close(code: code, reason: code == WebSocketErrorCode.unexpectedServerError ? "" : reason)
    }

    /// The longest prefix of `text` that fits in `maxBytes` without splitting a character.
    public static func utf8Prefix(of text: String, maxBytes: Int) -> String {
        guard text.utf8.count > maxBytes else { return text }
        var end = text.utf8.index(text.utf8.startIndex, offsetBy: maxBytes)
        while end > text.utf8.startIndex, end.samePosition(in: text.unicodeScalars) == nil {
            end = text.utf8.index(before: end)
        }
        return String(text[..<end])
    }
}

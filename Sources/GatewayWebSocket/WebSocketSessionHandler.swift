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
    private typealias Frame = WebSocketFrameParser.Frame

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
        public init(
            routeName: String,
            limits: WebSocketLimits,
            deflate: PerMessageDeflateParameters?,
            subprotocol: String?,
            drainSpread: TimeAmount = .zero,
            metrics: RouteMetrics? = nil,
            overHTTP2: Bool = false
        ) {
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
    private var utf8 = UTF8Validator()
    let deflate: PerMessageDeflate?
    private let parser: WebSocketFrameParser
    /// The start of a frame whose end has not been read yet, copied out of NIO's read buffer.
    private var pendingInput: ByteBuffer?
    /// Set when the bytes broke the framing rules: nothing more is read as frames.
    private var inputBroken = false
    /// The UTF-8 check of the text frame in `pendingInput` while it arrives: how many of its
    /// payload bytes were checked, and the validator after them. RFC 6455 §8.1 fails a
    /// connection as soon as a text message is known not to be UTF-8, so a large frame fails at
    /// its first bad byte, not when its last one arrives (Autobahn 6.4.3 and 6.4.4). Nil when no
    /// text frame is half-read.
    private var arrivingText: (checked: Int, validator: UTF8Validator)?
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
    private var readPending = false
    private var readingPaused = false
    /// Pending while the client is over its inflate rate: the input after the frame that put it
    /// there waits in `pendingInput`, and nothing more is read until the timer resumes it.
    var inflateTimer: NIOScheduledCallback?
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

    // MARK: Inbound

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        inReadBatch = true
        consume(unwrapInboundIn(data), context: context)
    }

    /// Reads the frames in `input` (after what `pendingInput` kept), keeping what is left: the
    /// start of a frame, or everything after the frame that put the client over its inflate rate.
    private func consume(_ bytes: ByteBuffer, context: ChannelHandlerContext) {
        guard !inputBroken else { return }
        var input = bytes
        // True when `input` is our own buffer (the start of a frame kept from earlier reads,
        // with these bytes appended), false when it is NIO's.
        var owned = false
        if var pending = pendingInput {
            pendingInput = nil
            pending.writeBuffer(&input)
            input = pending
            owned = true
        }
        do {
            while self.context != nil, inflateTimer == nil, let frame = try parser.parse(&input) {
                arrivingText = nil
                frameArrived(frame, context: context)
            }
            guard input.readableBytes > 0, self.context != nil else { return }
            guard try arrivingTextIsValid(input) else {
                inputBroken = true
                pendingInput = nil
                return fail(.dataInconsistentWithMessage, "invalid UTF-8")
            }
            if owned {
                input.discardReadBytes()
                pendingInput = input
                return
            }
            // Keep the partial frame in a buffer of our own: holding a slice of NIO's read
            // buffer would keep all of it. Sized for what came, not for the length the header
            // claims (14 bytes must not make us reserve a megabyte); it grows as bytes arrive.
            let frameBytes = try parser.frameBytes(input) ?? input.readableBytes
            var kept = context.channel.allocator.buffer(
                capacity: min(frameBytes, max(2 * input.readableBytes, 4096))
            )
            kept.writeBuffer(&input)
            pendingInput = kept
        } catch {
            inputBroken = true
            fail(error.closeCode, error.description)
        }
    }

    /// Checks the part of a text frame that has arrived, when the frame at the front of `input`
    /// is one whose end is still to come: false once it cannot be UTF-8 whatever follows. Only
    /// frames the session would take as text are looked into (an uncompressed text frame that
    /// starts a message, or a continuation of one); any other frame is judged when whole.
    private func arrivingTextIsValid(_ input: ByteBuffer) throws(WebSocketFrameParser.Failure) -> Bool {
        guard let frame = try parser.arrivingFrame(input), let mask = frame.mask,
            !frame.rsv1, !frame.rsv2, !frame.rsv3
        else { return true }
        let checked: Int
        var validator: UTF8Validator
        if let arrivingText {
            (checked, validator) = arrivingText
        } else if frame.opcode == .text, state.assembling == nil {
            (checked, validator) = (0, UTF8Validator())
        } else if frame.opcode == .continuation, let message = state.assembling,
            message.kind == .text, !message.compressed
        {
            // The message's own validator: a code point may have started in its last frame.
            (checked, validator) = (0, utf8)
        } else {
            return true
        }
        let valid = FrameUnmasking.validateUnmasked(frame.payload, from: checked, mask: mask, with: &validator)
        arrivingText = (frame.payload.readableBytes, validator)
        return valid
    }

    private func frameArrived(_ frame: Frame, context: ChannelHandlerContext) {
        let action = state.frameArrived(
            opcode: frame.opcode,
            masked: frame.isMasked,
            rsv1: frame.rsv1,
            rsv2: frame.rsv2,
            rsv3: frame.rsv3,
            now: .now()
        )
        switch action {
        case .startMessage(let kind, let compressed):
            startMessage(kind: kind, compressed: compressed, frame: frame)
        case .continueMessage(let compressed):
            continueMessage(compressed: compressed, frame: frame)
        case .sendPong:
            writeFrame(.pong, payload: unmasked(frame), context: context)
            needsFlush = true
        case .readClose:
            receivedClose(frame, context: context)
        case .closeTCP:
            state.closeAnswered(code: closeCode(of: frame))
            context.close(promise: nil)
        case .ignore:
            break
        case .fail(let code, let reason):
            fail(code, reason)
        case .rateLimited:
            rateLimited()
        }
    }

    private func unmasked(_ frame: Frame) -> ByteBuffer {
        frame.unmaskedPayload(allocator: context?.channel.allocator ?? ByteBufferAllocator())
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        inReadBatch = false
        if needsFlush {
            needsFlush = false
            flushOutput(context: context)
        }
        context.fireChannelReadComplete()
    }

    private func startMessage(kind: WebSocketMessage.Kind, compressed: Bool, frame: Frame) {
        utf8.reset()
        if compressed {
            partial = context!.channel.allocator.buffer(capacity: 0)
            appendCompressed(frame, kind: kind)
        } else {
            let length = frame.payload.readableBytes
            guard length <= configuration.limits.maxMessageBytes else {
                return fail(.messageTooLarge, "message larger than \(configuration.limits.maxMessageBytes) bytes")
            }
            var data = messageBuffer(capacity: length)
            frame.appendUnmaskedPayload(to: &data)
            if kind == .text && !utf8.validate(data) { return fail(.dataInconsistentWithMessage, "invalid UTF-8") }
            partial = data
        }
        if frame.fin { finishMessage(kind: kind) }
    }

    private func continueMessage(compressed: Bool, frame: Frame) {
        guard var data = partial, let kind = state.assembling?.kind else { return }
        if compressed {
            appendCompressed(frame, kind: kind)
        } else {
            guard data.readableBytes + frame.payload.readableBytes <= configuration.limits.maxMessageBytes else {
                return fail(.messageTooLarge, "message larger than \(configuration.limits.maxMessageBytes) bytes")
            }
            partial = nil  // keep the buffer uniquely referenced while appending
            let start = data.writerIndex - data.readerIndex
            frame.appendUnmaskedPayload(to: &data)
            if kind == .text {
                let valid = data.withUnsafeReadableBytes { bytes in
                    utf8.validate(UnsafeRawBufferPointer(rebasing: bytes[start...]))
                }
                if !valid { return fail(.dataInconsistentWithMessage, "invalid UTF-8") }
            }
            partial = data
        }
        if frame.fin, partial != nil { finishMessage(kind: kind) }
    }

    private func appendCompressed(_ frame: Frame, kind: WebSocketMessage.Kind) {
        guard var data = partial, let deflate else { return }
        partial = nil
        let before = data.writerIndex
        do {
            try deflate.decompress(
                unmasked(frame),
                final: frame.fin,
                into: &data,
                limit: configuration.limits.maxMessageBytes
            )
        } catch {
            switch error.reason {
            case .tooLarge:
                return fail(.messageTooLarge, "message larger than \(configuration.limits.maxMessageBytes) bytes")
            case .corrupt: return fail(.dataInconsistentWithMessage, "invalid compressed data")
            case .zlib: return fail(.unexpectedServerError, "compression failure")
            }
        }
        if let wait = state.inflated(bytes: data.writerIndex - before, now: .now()) {
            inflateTimer = schedule(.inflate, in: wait)
        }
        if kind == .text {
            let added = data.getSlice(at: before, length: data.writerIndex - before)!
            if !utf8.validate(added) { return fail(.dataInconsistentWithMessage, "invalid UTF-8") }
        }
        partial = data
    }

    private func finishMessage(kind: WebSocketMessage.Kind) {
        guard let data = partial else { return }
        partial = nil
        if kind == .text && !utf8.isAtBoundary { return fail(.dataInconsistentWithMessage, "invalid UTF-8") }
        guard state.messageCompleted(bytes: data.readableBytes, now: .now()) else { return rateLimited() }
        configuration.metrics?.received(bytes: data.readableBytes)
        application.session(self, didReceive: WebSocketMessage(kind: kind, data: data))
        // Kept for the next message: used again if the application let go of it (an echo,
        // a worker link, which copy it out), dropped at the next keepalive tick.
        if data.capacity <= WebSocketFrameWriter.retainedCapacity { spare = data }
    }

    /// A buffer for a message's bytes: the last message's when nobody else holds it any more.
    private func messageBuffer(capacity: Int) -> ByteBuffer {
        if var buffer = spare {
            spare = nil
            if buffer.capacity >= capacity, buffer.modifyIfUniquelyOwned({ $0.clear() }) != nil { return buffer }
        }
        return context!.channel.allocator.buffer(capacity: capacity)
    }

    private func receivedClose(_ frame: Frame, context: ChannelHandlerContext) {
        var payload = unmasked(frame)
        var code: WebSocketErrorCode?
        var reason: String?
        if payload.readableBytes == 1 { return fail(.protocolError, "close payload of one byte") }
        if let value = payload.readInteger(as: UInt16.self) {
            guard WebSocketErrorCode.isValidOnWire(value) else {
                return fail(.protocolError, "invalid close code \(value)")
            }
            guard UTF8Validator.isValid(payload) else {
                return fail(.dataInconsistentWithMessage, "close reason is not UTF-8")
            }
            code = WebSocketErrorCode(code: value)
            reason = String(buffer: payload)
        }
        state.closeFrameArrived(code: code, reason: reason)
        partial = nil
        discardBacklog()
        // Echo the code (RFC 6455 §5.5.1), then the server closes TCP first (§7.1.1).
        var reply = context.channel.allocator.buffer(capacity: 2)
        if let code { reply.write(webSocketErrorCode: code) }
        writeFrame(.connectionClose, payload: reply, context: context)
        let written = context.eventLoop.makePromise(of: Void.self)
        addOutputPromise(written)
        flushOutput(context: context)
        written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
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

    private func rateLimited() {
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

    // MARK: Flow control

    /// Reads pause while the client is not taking what is written to it: a slow reader slows
    /// down its own input instead of growing our buffers.
    public func read(context: ChannelHandlerContext) {
        if context.channel.isWritable && mayRead {
            context.read()
        } else {
            readPending = true
        }
    }

    /// Stops reading from the client (a route's own flow control, such as a worker that has not
    /// returned credit). Frames already read may still arrive.
    public func pauseReading() {
        readingPaused = true
    }

    public func resumeReading() {
        guard readingPaused else { return }
        readingPaused = false
        if readPending, mayRead, let context, context.channel.isWritable {
            readPending = false
            context.read()
        }
    }

    /// Neither the route nor the inflate rate holds the client's input.
    private var mayRead: Bool { !readingPaused && inflateTimer == nil }

    /// The inflate rate allows more: the input kept meanwhile is read, then the channel again.
    func inflateTimerFired() {
        inflateTimer = nil
        guard let context else { return }
        inReadBatch = true
        consume(context.channel.allocator.buffer(capacity: 0), context: context)
        inReadBatch = false
        if needsFlush {
            needsFlush = false
            flushOutput(context: context)
        }
        if readPending, mayRead, context.channel.isWritable {
            readPending = false
            context.read()
        }
    }

    /// Whether the client is taking what is sent to it (its queue is under `send_queue_bytes`).
    public var isWritable: Bool { context?.channel.isWritable ?? false }

    /// Whether the session can still send (no close started).
    public var isOpen: Bool { state.isOpen && context != nil }

    public var eventLoop: (any EventLoop)? { context?.eventLoop }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { drainBacklog(context: context) }
        if context.channel.isWritable && readPending && mayRead {
            readPending = false
            context.read()
        }
        application.sessionWritabilityChanged(self)
        context.fireChannelWritabilityChanged()
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

    private func closeCode(of frame: Frame) -> WebSocketErrorCode? {
        var payload = unmasked(frame)
        return payload.readInteger(as: UInt16.self).map(WebSocketErrorCode.init(code:))
    }
}

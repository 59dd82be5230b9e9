import GatewayCore
import GatewayMetrics
import NIOCore
import NIOWebSocket

/// Reading a session's input: frames out of the bytes as they arrive, and the flow control that
/// decides when more is read (the client's writability, the route's pause, the inflate rate and
/// each session's share of the event loop).
extension WebSocketSessionHandler {
    /// Frames a session handles in one turn of its event loop. A turn of 32 small hub messages
    /// takes about 1 ms in a release build: the loop's other channels wait at most that long
    /// for one busy client, and a client sending one message at a time never reaches it.
    static let framesPerTurn = 32

    // MARK: Inbound

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        inReadBatch = true
        consume(unwrapInboundIn(data), context: context)
    }

    /// Reads the frames in `input` (after what `pendingInput` kept), keeping what is left: the
    /// start of a frame, or everything after the frame that put the client over its inflate rate
    /// or ended its turn.
    func consume(_ bytes: ByteBuffer, context: ChannelHandlerContext) {
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
            while self.context != nil, !inputHeld, let frame = try parser.parse(&input) {
                arrivingText = nil
                frameArrived(frame, context: context)
                framesThisTurn += 1
                if framesThisTurn >= Self.framesPerTurn { endTurn() }
            }
            guard input.readableBytes > 0, self.context != nil else { return }
            if inputHeld {
                // Whole frames wait for the session's next turn: kept as they are (our own
                // buffer is not compacted on every turn), or copied out of NIO's.
                if !owned {
                    var kept = context.channel.allocator.buffer(capacity: input.readableBytes)
                    kept.writeBuffer(&input)
                    input = kept
                }
                pendingInput = input
                return
            }
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
    func arrivingTextIsValid(_ input: ByteBuffer) throws(WebSocketFrameParser.Failure) -> Bool {
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

    func frameArrived(_ frame: Frame, context: ChannelHandlerContext) {
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

    func unmasked(_ frame: Frame) -> ByteBuffer {
        frame.unmaskedPayload(allocator: context?.channel.allocator ?? ByteBufferAllocator())
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        inReadBatch = false
        if turnEnded {
            scheduleNextTurn()
        } else {
            framesThisTurn = 0
        }
        if needsFlush {
            needsFlush = false
            flushOutput(context: context)
        }
        context.fireChannelReadComplete()
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

    /// Neither the route, nor the inflate rate, nor the end of a turn holds the client's input.
    private var mayRead: Bool { !readingPaused && !inputHeld }

    /// Input is kept unread while the client is over its inflate rate or its turn has ended.
    private var inputHeld: Bool { inflateTimer != nil || turnEnded }

    /// The session has handled `framesPerTurn` frames since the event loop last came to it:
    /// the rest of what was read waits in `pendingInput` and nothing more is read until the
    /// loop has served its other channels. One client sending as fast as it can (a read brings
    /// up to a few hundred KiB, thousands of small messages) must not hold the loop for everyone
    /// else; NIO's own `maxMessagesPerRead` bounds reads, not messages.
    private func endTurn() {
        turnEnded = true
    }

    /// Schedules the session's next turn once the batch of work that ended its turn is over:
    /// after the loop's next poll of its sockets (`EventLoopYield`), so what they brought is
    /// served first.
    func scheduleNextTurn() {
        guard turnEnded, !turnScheduled, let context else { return }
        turnScheduled = true
        let next = { self.nextTurn() }
        if let yield = configuration.yield {
            yield.afterNextPoll(on: context.eventLoop, next)
        } else {
            context.eventLoop.assumeIsolated().execute(next)
        }
    }

    /// The session's next turn: the input kept since its last one is read.
    func nextTurn() {
        turnScheduled = false
        turnEnded = false
        framesThisTurn = 0
        readHeldInput()
    }

    /// The inflate rate allows more: the input kept meanwhile is read, then the channel again.
    func inflateTimerFired() {
        inflateTimer = nil
        readHeldInput()
    }

    /// Reads the input kept while it was held, then, if nothing holds it again, the channel.
    private func readHeldInput() {
        guard let context, !inputHeld else { return }
        inReadBatch = true
        consume(context.channel.allocator.buffer(capacity: 0), context: context)
        inReadBatch = false
        if needsFlush {
            needsFlush = false
            flushOutput(context: context)
        }
        scheduleNextTurn()
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
}

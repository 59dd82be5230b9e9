import GatewayCore
import GatewayMetrics
import NIOCore
import NIOWebSocket

/// What a session writes: messages from its route and from the pipeline, the `drop-oldest`
/// backlog, and the frames gathered in `output` until the batch is flushed.
extension WebSocketSessionHandler {
    // MARK: Outbound

    /// Sends a message from the event loop (a route's reply). Flushed at the end of the current
    /// read batch, or at once when called outside one.
    public func send(_ message: WebSocketMessage) {
        guard let context, state.isOpen else { return }
        writeMessage(message, context: context, promise: nil)
        if inReadBatch {
            needsFlush = true
        } else {
            flushOutput(context: context)
        }
    }

    /// Sends a message that did not come from this client's own reads (a worker's send, a hub
    /// publish, an admin send), which cannot be slowed for this one client. A client that is not
    /// reading has a bounded queue (`send_queue_bytes`); past it the route's overflow policy
    /// applies: close with `overflow_close_code`, or drop the oldest pushed messages not yet
    /// written. Returns false when the session was closed for it.
    @discardableResult
    public func sendUnlessFull(_ message: WebSocketMessage) -> Bool {
        guard isOpen else { return true }
        if backlog.isEmpty && isWritable {
            send(message)
            return true
        }
        let limits = configuration.limits
        switch limits.overflow {
        case .close:
            state.dropped(1)
            configuration.metrics?.dropped(1)
            configuration.metrics?.overflowed()
            close(code: limits.overflowCloseCode, reason: "send queue full")
            return false
        case .dropOldest:
            backlog.append(message)
            backlogBytes += message.data.readableBytes
            // The newest message always stays, even alone over the budget.
            while backlogBytes > limits.sendQueueBytes, backlog.count > 1 {
                backlogBytes -= backlog.removeFirst().data.readableBytes
                state.dropped(1)
                configuration.metrics?.dropped(1)
            }
            return true
        }
    }

    /// Moves backlogged messages to the channel while it takes them, oldest first.
    func drainBacklog(context: ChannelHandlerContext) {
        guard !backlog.isEmpty else { return }
        while state.isOpen, context.channel.isWritable, let message = backlog.popFirst() {
            backlogBytes -= message.data.readableBytes
            writeMessage(message, context: context, promise: nil)
        }
        if backlog.isEmpty && backlog.capacity > 1 { backlog = CircularBuffer(initialCapacity: 1) }
        flushOutput(context: context)
    }

    /// A closing session delivers no more pushed messages: they count as dropped.
    func discardBacklog() {
        state.dropped(backlog.count)
        if !backlog.isEmpty { configuration.metrics?.dropped(backlog.count) }
        backlog = CircularBuffer(initialCapacity: 1)
        backlogBytes = 0
    }

    /// Messages waiting in the `drop-oldest` backlog, and their bytes (for the admin API).
    public var backlogSize: (messages: Int, bytes: Int) { (backlog.count, backlogBytes) }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let message = unwrapOutboundIn(data)
        guard state.isOpen else {
            promise?.fail(ChannelError.outputClosed)
            return
        }
        writeMessage(message, context: context, promise: promise)
    }

    func writeMessage(
        _ message: WebSocketMessage,
        context: ChannelHandlerContext,
        promise: EventLoopPromise<Void>?
    ) {
        let opcode: WebSocketOpcode = message.kind == .text ? .text : .binary
        state.messageSent(bytes: message.data.readableBytes)
        configuration.metrics?.sent(bytes: message.data.readableBytes)
        if let deflate, deflate.shouldCompress(message.data.readableBytes) {
            do {
                let compressed = try deflate.compress(message, allocator: context.channel.allocator)
                writeFrame(opcode, rsv1: true, payload: compressed, context: context, promise: promise)
                return
            } catch {
                promise?.fail(error)
                fail(.unexpectedServerError, "compression failure")
                return
            }
        }
        writeFrame(opcode, payload: message.data, context: context, promise: promise)
    }

    /// Adds a frame to `output`; a payload too large to copy goes to the channel after what
    /// `output` holds, in order.
    func writeFrame(
        _ opcode: WebSocketOpcode,
        rsv1: Bool = false,
        payload: ByteBuffer,
        context: ChannelHandlerContext,
        promise: EventLoopPromise<Void>? = nil
    ) {
        let large = output.append(opcode: opcode, rsv1: rsv1, payload: payload, allocator: context.channel.allocator)
        if let large {
            writeOutput(context: context)
            context.write(wrapOutboundOut(large), promise: promise)
        } else if let promise {
            addOutputPromise(promise)
        }
    }

    func addOutputPromise(_ promise: EventLoopPromise<Void>) {
        if let outputPromise {
            outputPromise.futureResult.cascade(to: promise)
        } else {
            outputPromise = promise
        }
    }

    func failOutputPromise() {
        outputPromise?.fail(ChannelError.ioOnClosedChannel)
        outputPromise = nil
    }

    /// Hands what `output` holds to the channel, without flushing.
    func writeOutput(context: ChannelHandlerContext) {
        guard let bytes = output.take() else { return }
        let promise = outputPromise
        outputPromise = nil
        context.write(wrapOutboundOut(bytes), promise: promise)
    }

    func flushOutput(context: ChannelHandlerContext) {
        writeOutput(context: context)
        context.flush()
    }

    /// A flush from the pipeline (a write from another event loop, `writeAndFlush`).
    public func flush(context: ChannelHandlerContext) {
        flushOutput(context: context)
    }
}

import NIOCore

/// Sits in front of the HTTP decoder and bounds what a client may do before its request head is
/// complete: the bytes it may send (the decoder bounds header fields, but not the request line)
/// and the time it may take (the slowloris guard) — for the head, and then for the body, each
/// within the header timeout (nothing here reads a body: a client that never finishes one would
/// otherwise hold its connection for good). Between keep-alive requests it closes a connection
/// that stays silent for the idle timeout.
final class HTTPRequestGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Sent outbound by the HTTP handler to move the guard along.
    enum Event {
        /// A request head was decoded: its body (if any) must follow within the header timeout.
        case headReceived
        /// The request is whole: no more limits until its response is done.
        case requestEnded
        /// The response is written; the connection now waits for the next request.
        case responseComplete
    }

    private enum State {
        /// Waiting for the first byte of a request (the idle timer runs).
        case idle
        /// Bytes of a head are arriving (the header timer runs).
        case readingHead(bytes: Int)
        /// A head is in and its body is arriving (the header timer runs again).
        case readingBody
        /// The request is in: the handler owns the connection until its response is written.
        case inRequest
    }

    private let maxHeadBytes: Int
    private let headerTimeout: TimeAmount
    private let idleTimeout: TimeAmount
    private let onReject: @Sendable (_ status: Int) -> Void
    private var state = State.idle
    private var timer: Scheduled<Void>?
    private var rejected = false

    /// - Parameters:
    ///   - maxHeaderBytes: the header-block limit; the whole head may add 8 KiB of request line.
    ///   - onReject: counts refusals (for metrics and tests).
    init(
        maxHeaderBytes: Int,
        headerTimeout: TimeAmount,
        idleTimeout: TimeAmount,
        onReject: @escaping @Sendable (Int) -> Void = { _ in }
    ) {
        self.maxHeadBytes = maxHeaderBytes + 8192
        self.headerTimeout = headerTimeout
        self.idleTimeout = idleTimeout
        self.onReject = onReject
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { armFirstRequestTimer(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        armFirstRequestTimer(context: context)
        context.fireChannelActive()
    }

    /// A new connection gets the header timeout for its first request (not the longer idle
    /// timeout): a connection that never sends anything is a slowloris too.
    private func armFirstRequestTimer(context: ChannelHandlerContext) {
        guard timer == nil, case .idle = state else { return }
        arm(context: context, after: headerTimeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !rejected else { return }
        let bytes = unwrapInboundIn(data).readableBytes
        switch state {
        case .idle:
            state = .readingHead(bytes: bytes)
            arm(context: context, after: headerTimeout)
        case .readingHead(let count):
            state = .readingHead(bytes: count + bytes)
        case .readingBody, .inRequest:
            break
        }
        context.fireChannelRead(data)
        // The decoder ran synchronously inside fireChannelRead: if the head completed in this
        // chunk we are `.inRequest` by now, and the bytes after it were not head bytes.
        if case .readingHead(let count) = state, count > maxHeadBytes {
            reject(context: context, status: 431)
        }
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let event = event as? Event else {
            return context.triggerUserOutboundEvent(event, promise: promise)
        }
        switch event {
        case .headReceived:
            state = .readingBody
            arm(context: context, after: headerTimeout)
        case .requestEnded:
            state = .inRequest
            timer?.cancel()
            timer = nil
        case .responseComplete:
            state = .idle
            arm(context: context, after: idleTimeout)
        }
        promise?.succeed()
    }

    private func arm(context: ChannelHandlerContext, after delay: TimeAmount) {
        timer?.cancel()
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [weak self] in
            guard let self else { return }
            switch self.state {
            case .inRequest:
                return
            case .idle:
                // Nothing arrived at all (an idle keep-alive connection, or a client that never
                // even finished its TLS handshake): there is nobody to answer, just close.
                context.close(promise: nil)
            case .readingHead, .readingBody:
                self.reject(context: context, status: 408)
            }
        }
    }

    private func reject(context: ChannelHandlerContext, status: Int) {
        guard !rejected else { return }
        rejected = true
        timer?.cancel()
        onReject(status)
        let reason = status == 431 ? "Request Header Fields Too Large" : "Request Timeout"
        let body =
            switch (status, state) {
            case (431, _): "request head too large\n"
            case (_, .readingBody): "request body not received in time\n"
            default: "request head not received in time\n"
            }
        var response = context.channel.allocator.buffer(capacity: 160)
        response.writeString(
            "HTTP/1.1 \(status) \(reason)\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        )
        context.writeAndFlush(wrapOutboundOut(response)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
        // A client that does not read its answer must not keep the connection open either.
        context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(2)) {
            context.close(promise: nil)
        }
    }
}

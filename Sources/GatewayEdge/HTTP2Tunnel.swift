import NIOCore
import NIOHTTP2

/// An HTTP/2 stream after an accepted extended CONNECT (RFC 8441): DATA payloads are the
/// WebSocket's bytes both ways, so the session (or a pass-through's glue) above reads and writes
/// exactly what it does on TCP. END_STREAM stands for TCP's orderly close, RST_STREAM for a reset
/// (RFC 8441 §5).
final class HTTP2Tunnel: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = HTTP2Frame.FramePayload

    /// After the gateway ends its side, how long the client has to end its own before the stream
    /// is reset.
    static let closeGrace = TimeAmount.seconds(2)

    private var early: ByteBuffer?
    /// The client ended its side (END_STREAM).
    private var remoteEnded: Bool
    /// The gateway ended its side.
    private var localEnded = false

    /// - Parameters:
    ///   - early: what the client sent after its CONNECT and before the answer.
    ///   - remoteEnded: whether it also ended its side already.
    init(early: ByteBuffer?, remoteEnded: Bool) {
        self.early = early
        self.remoteEnded = remoteEnded
    }

    /// The session (or glue) is above: what the client sent early goes up first.
    func open(context: ChannelHandlerContext) {
        if let early, early.readableBytes > 0 {
            self.early = nil
            context.fireChannelRead(wrapInboundOut(early))
        }
        if remoteEnded { clientEnded(context: context) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .data(let payload):
            guard case .byteBuffer(let bytes) = payload.data else { return }
            if bytes.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(bytes)) }
            if payload.endStream {
                remoteEnded = true
                clientEnded(context: context)
            }
        case .headers(let trailers) where trailers.endStream:
            // Trailers mean nothing to a WebSocket: the end of the client's side.
            remoteEnded = true
            clientEnded(context: context)
        default:
            break
        }
    }

    /// The client ended its side: as TCP's end of stream, the connection is over (after a
    /// WebSocket close this completes the closing handshake; before one, the session reports an
    /// abnormal closure). A Close frame in the same read is answered first: the session ends
    /// the stream itself then, and the reset waits a loop tick for it.
    private func clientEnded(context: ChannelHandlerContext) {
        guard !localEnded else { return }  // the stream is complete now
        context.flush()
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let (tunnel, context) = loopBound.value
            if !tunnel.localEnded { context.close(promise: nil) }
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let bytes = unwrapOutboundIn(data)
        context.write(wrapOutboundOut(.data(.init(data: .byteBuffer(bytes)))), promise: promise)
    }

    /// Closing ends the gateway's side with END_STREAM; the stream closes when the client ends
    /// its own, or is reset (RST_STREAM, CANCEL) after a grace.
    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode == .all, !localEnded, context.channel.isActive else {
            return context.close(mode: mode, promise: promise)
        }
        localEnded = true
        let empty = context.channel.allocator.buffer(capacity: 0)
        context.writeAndFlush(wrapOutboundOut(.data(.init(data: .byteBuffer(empty), endStream: true))), promise: nil)
        if let promise { context.channel.closeFuture.cascade(to: promise) }
        guard !remoteEnded else { return }
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let reset = context.eventLoop.scheduleTask(in: Self.closeGrace) {
            loopBound.value.close(promise: nil)
        }
        context.channel.closeFuture.whenComplete { _ in reset.cancel() }
    }
}

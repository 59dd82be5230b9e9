import NIOCore
import NIOTLS

/// On a TLS listener that offers `h2`, waits for the handshake and builds the pipeline ALPN
/// chose: HTTP/2 (RFC 8441 WebSockets on its streams) or HTTP/1.1 as on every other listener.
/// Unlike NIO's `ApplicationProtocolNegotiationHandler` it bounds the wait (a client that never
/// finishes its handshake is closed after the header timeout, as the HTTP/1.1 pipeline's request
/// guard would) and reports a failed handshake as the HTTP handler does.
final class HTTPVersionSelector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    /// Adds one protocol's handlers after this one.
    typealias Configure = (ChannelPipeline.SynchronousOperations) throws -> Void

    private let timeout: TimeAmount
    private let http1: Configure
    private let http2: Configure
    private let failed: (any Error, ChannelHandlerContext) -> Void
    private var timer: Scheduled<Void>?
    /// What arrived with the handshake's end, before the pipeline was built.
    private var buffered: [NIOAny] = []

    /// - Parameters:
    ///   - timeout: how long the client has to complete its handshake.
    ///   - failed: reports an error before the choice (a failed handshake) and closes.
    init(
        timeout: TimeAmount,
        http1: @escaping Configure,
        http2: @escaping Configure,
        failed: @escaping (any Error, ChannelHandlerContext) -> Void
    ) {
        self.timeout = timeout
        self.http1 = http1
        self.http2 = http2
        self.failed = failed
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: timeout) { loopBound.value.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        buffered.append(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case TLSUserEvent.handshakeCompleted(let negotiated) = event else {
            return context.fireUserInboundEventTriggered(event)
        }
        timer?.cancel()
        do {
            try (negotiated == "h2" ? http2 : http1)(context.pipeline.syncOperations)
        } catch {
            return context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
        let pending = buffered
        buffered = []
        for data in pending { context.fireChannelRead(data) }
        if !pending.isEmpty { context.fireChannelReadComplete() }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failed(error, context)
    }
}

import GatewayMetrics
import NIOCore
import NIOTLS

/// Times a connection's TLS handshake, from the moment it was accepted to the handshake's end,
/// into `wssgate_tls_handshake_duration_seconds`, then leaves the pipeline.
final class TLSHandshakeTimer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let listener: String
    private let metrics: GatewayMetrics
    private let started = NIODeadline.now()

    init(listener: String, metrics: GatewayMetrics) {
        self.listener = listener
        self.metrics = metrics
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event {
            metrics.tlsHandshakeCompleted(listener: listener, nanoseconds: (NIODeadline.now() - started).nanoseconds)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }
}

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
        guard case TLSUserEvent.handshakeCompleted = event else {
            return context.fireUserInboundEventTriggered(event)
        }
        metrics.tlsHandshakeCompleted(listener: listener, nanoseconds: (NIODeadline.now() - started).nanoseconds)
        // The event goes on first: a handler that leaves the pipeline no longer passes events,
        // and the HTTP version selector after this one waits for it.
        context.fireUserInboundEventTriggered(event)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

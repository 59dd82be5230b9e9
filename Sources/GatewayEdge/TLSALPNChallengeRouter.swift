import GatewayTLS
import NIOCore
import NIOSSL
import NIOTLS

/// First handler of a TLS listener whose certificate comes from ACME with TLS-ALPN-01: it reads
/// the ClientHello before TLS starts. A hello that offers `acme-tls/1` for a name with a pending
/// challenge gets the challenge certificate and nothing else (RFC 8737 §3: the connection ends
/// after the handshake); every other connection gets the listener's normal pipeline, and the
/// bytes read so far are passed on to it unchanged.
final class TLSALPNChallengeRouter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let challenges: ACMEChallenges
    private let timeout: TimeAmount
    private let normalPipeline: (ChannelPipeline.SynchronousOperations) throws -> Void
    private var received: ByteBuffer?
    private var timer: Scheduled<Void>?
    private var decided = false

    /// - Parameters:
    ///   - timeout: how long a connection may take to send its ClientHello (the header timeout).
    ///   - normalPipeline: adds the listener's TLS and HTTP handlers.
    init(
        challenges: ACMEChallenges,
        timeout: TimeAmount,
        normalPipeline: @escaping (ChannelPipeline.SynchronousOperations) throws -> Void
    ) {
        self.challenges = challenges
        self.timeout = timeout
        self.normalPipeline = normalPipeline
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: timeout) {
            loopBound.value.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !decided else { return context.fireChannelRead(data) }
        var incoming = unwrapInboundIn(data)
        if received == nil {
            received = incoming
        } else {
            received!.writeBuffer(&incoming)
        }
        let bytes = Array(received!.readableBytesView)
        switch ClientHello.parse(bytes) {
        case .incomplete:
            return
        case .hello(let hello):
            if hello.applicationProtocols.contains(ACMEChallenges.alpnProtocol) {
                // Only the CA's validation offers acme-tls/1; without a pending challenge for
                // the name there is nothing to show it.
                guard let name = hello.serverName, let challenge = challenges.tlsALPNContext(serverName: name) else {
                    return context.close(promise: nil)
                }
                route(context: context) { pipeline in
                    try pipeline.addHandler(NIOSSLServerHandler(context: challenge))
                    try pipeline.addHandler(CloseAfterHandshake())
                }
            } else {
                route(context: context, normalPipeline)
            }
        case .unreadable:
            // Not for us to judge: TLS answers it with an alert.
            route(context: context, normalPipeline)
        }
    }

    private func route(context: ChannelHandlerContext, _ build: (ChannelPipeline.SynchronousOperations) throws -> Void)
    {
        decided = true
        timer?.cancel()
        do {
            try build(context.pipeline.syncOperations)
        } catch {
            return context.close(promise: nil)
        }
        if let received {
            self.received = nil
            context.fireChannelRead(wrapInboundOut(received))
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    /// The CA's validation client reads the certificate and closes; nothing else is served.
    private final class CloseAfterHandshake: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case TLSUserEvent.handshakeCompleted = event {
                context.close(promise: nil)
            }
            context.fireUserInboundEventTriggered(event)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.close(promise: nil)
        }
    }
}

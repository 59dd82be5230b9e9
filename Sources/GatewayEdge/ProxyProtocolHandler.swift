import GatewayCore
import GatewayMetrics
import Logging
import NIOCore
import ProxyProtocol

/// First handler of a listener with `proxy_protocol`: reads the PROXY protocol header (v1 or v2)
/// before anything else — TLS included — and checks it against who sent it. A trusted load
/// balancer must send one; anyone else must not. The client it names goes to the connection's
/// `ConnectionOrigin`, the header's bytes are dropped, and the handler leaves the pipeline with
/// the bytes behind the header passed on. A refused connection is closed without an answer (its
/// protocol, TLS or HTTP, is not known yet).
final class ProxyProtocolHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let settings: ProxyProtocolSettings
    private let origin: ConnectionOrigin
    private let timeout: TimeAmount
    private let logger: Logger
    private let metrics: GatewayMetrics?
    private var received: ByteBuffer?
    private var timer: Scheduled<Void>?
    private var done = false

    init(
        settings: ProxyProtocolSettings,
        origin: ConnectionOrigin,
        timeout: TimeAmount,
        logger: Logger,
        metrics: GatewayMetrics?
    ) {
        self.settings = settings
        self.origin = origin
        self.timeout = timeout
        self.logger = logger
        self.metrics = metrics
    }

    func handlerAdded(context: ChannelHandlerContext) {
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            self.refuse(context: context, "no complete PROXY header in time", code: "timeout")
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        context.fireChannelInactive()
    }

    /// Whether the peer is one of the load balancers. A Unix-socket peer has no address to check
    /// and counts as one: the socket's permissions decide who connects.
    private func peerIsTrusted(_ context: ChannelHandlerContext) -> Bool {
        guard let peer = context.channel.remoteAddress, let text = peer.ipAddress else { return true }
        guard let bytes = IPNetwork.parseAddress(text) else { return false }
        return settings.trusted.contains { $0.contains(bytes) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return context.fireChannelRead(data) }
        var incoming = unwrapInboundIn(data)
        if received == nil {
            received = incoming
        } else {
            received!.writeBuffer(&incoming)
        }
        let bytes = Array(received!.readableBytesView.prefix(ProxyProtocolParser.maxV2Length))
        let trusted = peerIsTrusted(context)
        do {
            switch try ProxyProtocolParser.parse(bytes) {
            case .needMore:
                return
            case .notAHeader:
                guard !trusted else {
                    return refuse(
                        context: context,
                        "a load balancer's connection without a PROXY header",
                        code: "missing"
                    )
                }
                pass(context: context, skipping: 0)
            case .header(let header):
                guard trusted else {
                    return refuse(context: context, "a PROXY header from an untrusted peer", code: "untrusted")
                }
                if let source = header.source {
                    var packed = context.channel.allocator.buffer(capacity: source.address.count)
                    packed.writeBytes(source.address)
                    origin.client = try? SocketAddress(packedIPAddress: packed, port: Int(source.port))
                }
                pass(context: context, skipping: header.length)
            }
        } catch {
            refuse(context: context, error.message, code: error.code.rawValue)
        }
    }

    /// Hands on what followed the header and leaves the pipeline.
    private func pass(context: ChannelHandlerContext, skipping length: Int) {
        done = true
        timer?.cancel()
        guard var rest = received else { return }
        received = nil
        rest.moveReaderIndex(forwardBy: length)
        // Passed on before leaving: a removed handler's context reaches nothing.
        if rest.readableBytes > 0 {
            context.fireChannelRead(wrapInboundOut(rest))
            context.fireChannelReadComplete()
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func refuse(context: ChannelHandlerContext, _ why: String, code: String) {
        guard !done else { return }
        done = true
        received = nil
        metrics?.handshakeFailed(reason: "proxy_protocol")
        logger.info(
            "proxy protocol refused",
            metadata: [
                "peer": .string(PeerAddress.describe(context.channel.remoteAddress)),
                "reason": .string(why), "code": .string(code),
            ]
        )
        context.close(promise: nil)
    }
}

import GatewayAuth
import GatewayCore
import GatewayMetrics
import GatewayTLS
import GatewayWebSocket
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL
import ServiceLifecycle

/// Logs what goes wrong while accepting or setting up a connection (descriptor limits, a
/// connection's pipeline that cannot be built): otherwise such a connection would just vanish.
final class AcceptErrorLogger: ChannelInboundHandler {
    typealias InboundIn = any Channel
    let listener: String
    let logger: Logger

    init(listener: String, logger: Logger) {
        self.listener = listener
        self.logger = logger
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.warning(
            "cannot accept a connection",
            metadata: ["listener": .string(listener), "error": .string("\(error)")]
        )
    }
}

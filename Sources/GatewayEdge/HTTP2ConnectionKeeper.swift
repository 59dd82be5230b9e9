import GatewayWebSocket
import Logging
import NIOCore
import NIOHTTP2
import NIOSSL

/// The gateway's side of one HTTP/2 connection, between NIO's HTTP/2 handler and its connection
/// manager (which sends GOAWAY and closes once the last stream is gone when told to quiesce):
///
/// - a connection with no open stream for the listener's idle timeout is told to quiesce (the
///   manager's own idle timer starts only on `channelActive`, long past when ALPN chose h2);
/// - a reload's `DrainEvent` reaches every stream's session (NIO passes only
///   `ChannelShouldQuiesceEvent` on to streams), so their 1001 says `drain`;
/// - connection errors are logged, not thrown away.
final class HTTP2ConnectionKeeper: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame
    typealias InboundOut = HTTP2Frame

    /// Streams a client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS): each is a
    /// session or a request; the connection limits count each session as a connection.
    static let maxConcurrentStreams = 100
    /// How long an idle connection told to go has to answer the GOAWAY's PING.
    static let goAwayGrace = TimeAmount.seconds(5)

    private let idleTimeout: TimeAmount
    private let logger: Logger
    private var context: ChannelHandlerContext?
    private var idleTimer: Scheduled<Void>?
    /// Open streams' channels, by identity.
    private var streams: [ObjectIdentifier: any Channel] = [:]

    init(idleTimeout: TimeAmount, logger: Logger) {
        self.idleTimeout = idleTimeout
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        startIdleTimer(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        self.context = nil
    }

    /// What NIO's HTTP/2 handler tells of its streams (with its inline multiplexer it tells a
    /// delegate, not the pipeline): the keeper and the connection manager both follow them.
    struct StreamDelegate: NIOHTTP2StreamDelegate {
        let keeper: NIOLoopBound<HTTP2ConnectionKeeper>
        let manager: NIOHTTP2ServerConnectionManagementHandler.HTTP2StreamDelegate

        func streamCreated(_ id: HTTP2StreamID, channel: any Channel) {
            manager.streamCreated(id, channel: channel)
            keeper.value.streamOpened(channel)
        }

        func streamClosed(_ id: HTTP2StreamID, channel: any Channel) {
            manager.streamClosed(id, channel: channel)
            keeper.value.streamClosed(channel)
        }
    }

    /// The delegate to give NIO's HTTP/2 handler (made on the connection's event loop).
    func streamDelegate(manager: NIOHTTP2ServerConnectionManagementHandler, eventLoop: any EventLoop) -> StreamDelegate
    {
        StreamDelegate(keeper: NIOLoopBound(self, eventLoop: eventLoop), manager: manager.http2StreamDelegate)
    }

    private func streamOpened(_ stream: any Channel) {
        streams[ObjectIdentifier(stream)] = stream
        idleTimer?.cancel()
        idleTimer = nil
    }

    private func streamClosed(_ stream: any Channel) {
        streams[ObjectIdentifier(stream)] = nil
        if streams.isEmpty, let context { startIdleTimer(context: context) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let drain = event as? DrainEvent {
            for stream in streams.values { stream.pipeline.fireUserInboundEventTriggered(drain) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func startIdleTimer(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        idleTimer = context.eventLoop.scheduleTask(in: idleTimeout) {
            // The manager (next) sends GOAWAY and closes once its PING is answered; a client
            // that answers nothing is closed after a grace.
            let (_, context) = loopBound.value
            context.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
            context.eventLoop.scheduleTask(in: Self.goAwayGrace) {
                let (keeper, context) = loopBound.value
                if keeper.streams.isEmpty { context.close(promise: nil) }
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case NIOSSLError.uncleanShutdown = error { return context.fireErrorCaught(error) }
        logger.debug(
            "http/2 connection error",
            metadata: [
                "peer": .string(PeerAddress.describe(context.channel.remoteAddress)), "error": .string("\(error)"),
            ]
        )
        context.fireErrorCaught(error)
    }
}

import NIOCore
import NIOHTTP2

/// Which of an HTTP/2 connection's streams are served: as many at once as the gateway advertised
/// in SETTINGS_MAX_CONCURRENT_STREAMS; one more is refused alone, with RST_STREAM REFUSED_STREAM,
/// which tells the client it may retry it (RFC 9113 §5.1.2 and §8.7).
///
/// NIO's HTTP/2 handler treats a stream past the limit it enforces as a connection error (a
/// GOAWAY for every stream on the connection). So NIO is given `enforcedLimit` — twice what is
/// advertised — `AdvertisedStreamLimit` writes the advertised number into the SETTINGS frame the
/// client sees, and the streams in between are refused here. Only a client that ignores both the
/// setting and the refusals, holding twice the limit open, loses its connection.
final class HTTP2StreamAdmission {
    let limit: Int
    private var open = 0

    init(limit: Int) {
        self.limit = limit
    }

    /// What NIO enforces for an advertised `limit`.
    static func enforcedLimit(advertised limit: Int) -> Int { limit * 2 }

    /// Counts `stream` until it closes and returns true, or returns false when `limit` streams are
    /// open (then the caller refuses it).
    func admit(_ stream: any Channel) -> Bool {
        guard open < limit else { return false }
        open += 1
        let loopBound = NIOLoopBound(self, eventLoop: stream.eventLoop)
        stream.closeFuture.whenComplete { _ in loopBound.value.open -= 1 }
        return true
    }

    /// A stream's only handler when it is refused: RST_STREAM REFUSED_STREAM as soon as it is
    /// active, which ends it; what the client sent on it is dropped.
    final class Refusal: ChannelInboundHandler {
        typealias InboundIn = HTTP2Frame.FramePayload
        typealias OutboundOut = HTTP2Frame.FramePayload

        func handlerAdded(context: ChannelHandlerContext) {
            if context.channel.isActive { refuse(context: context) }
        }

        func channelActive(context: ChannelHandlerContext) {
            refuse(context: context)
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

        private func refuse(context: ChannelHandlerContext) {
            context.writeAndFlush(wrapOutboundOut(.rstStream(.refusedStream)), promise: nil)
        }
    }
}

import NIOCore

/// Sends the upgrade request upstream and reads the answer's head (bounded to 16 KiB).
final class UpstreamHandshake: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Outcome: Sendable {
        case upgraded(any Channel, responseHead: ByteBuffer, firstFrames: ByteBuffer)
        case refused(status: Int, statusLine: String)
        case unreachable
        case timedOut
        case malformed
    }

    private let request: String
    private let promise: EventLoopPromise<Outcome>
    private let timeout: TimeAmount
    private var buffer = ByteBuffer()
    private var timer: Scheduled<Void>?
    private var done = false

    init(request: String, promise: EventLoopPromise<Outcome>, timeout: TimeAmount) {
        self.request = request
        self.promise = promise
        self.timeout = timeout
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: request)), promise: nil)
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            self.finish(.timedOut, context: context, close: true)
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        var chunk = unwrapInboundIn(data)
        buffer.writeBuffer(&chunk)
        let view = buffer.readableBytesView
        guard let end = view.firstRange(of: [13, 10, 13, 10]) else {
            if buffer.readableBytes > 16384 { finish(.malformed, context: context, close: true) }
            return
        }
        let headLength = end.upperBound - view.startIndex
        let head = buffer.getSlice(at: buffer.readerIndex, length: headLength)!
        let statusLine = String(buffer: head).split(separator: "\r\n", maxSplits: 1).first.map(String.init) ?? ""
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            return finish(.malformed, context: context, close: true)
        }
        guard status == 101 else {
            return finish(
                .refused(status: (400...599).contains(status) ? status : 502, statusLine: statusLine),
                context: context,
                close: true
            )
        }
        // The head and anything that came with it (the upstream's first frames) go on. The
        // handler leaves first, so that what is added to the pipeline in answer reads after it.
        buffer.moveReaderIndex(forwardBy: headLength)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        finish(.upgraded(context.channel, responseHead: head, firstFrames: buffer), context: context, close: false)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.unreachable, context: context, close: false)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.unreachable, context: context, close: true)
    }

    private func finish(_ outcome: Outcome, context: ChannelHandlerContext, close: Bool) {
        guard !done else { return }
        done = true
        timer?.cancel()
        promise.succeed(outcome)
        if close { context.close(promise: nil) }
    }
}

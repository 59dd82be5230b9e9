import NIOCore

/// Joins two channels on the same event loop: what one reads the other writes, with
/// back-pressure (a side that cannot write stops the other from reading) and close propagation.
/// The pass-through of a proxy route.
///
/// Back-pressure switches the other side's `autoRead` when writability changes, instead of
/// intercepting every `read()`: an inbound-only handler is skipped by the outbound events, so
/// the read NIO issues after each batch does not pass through it (measured on the proxy route's
/// round trips, where every event counts).
final class GlueHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias OutboundOut = NIOAny

    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?

    private init() {}

    static func matchedPair() -> (GlueHandler, GlueHandler) {
        let first = GlueHandler()
        let second = GlueHandler()
        first.partner = second
        second.partner = first
        return (first, second)
    }

    private func partnerWrite(_ data: NIOAny) { context?.write(data, promise: nil) }
    private func partnerFlush() { context?.flush() }
    private func partnerClose() { context?.close(promise: nil) }

    /// Reads on this side go on only while the partner can write.
    private func setReading(_ reading: Bool) {
        guard let channel = context?.channel else { return }
        try? channel.syncOptions?.setOption(.autoRead, value: reading)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // The second of the pair to arrive settles both directions.
        guard let partner, let partnerContext = partner.context else { return }
        if !context.channel.isWritable { partner.setReading(false) }
        if !partnerContext.channel.isWritable { setReading(false) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner?.partnerWrite(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.partnerFlush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.partnerClose()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        partner?.setReading(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }
}

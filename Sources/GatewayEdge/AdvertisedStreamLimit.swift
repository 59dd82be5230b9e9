import NIOCore

/// Writes the number of concurrent streams the gateway serves into its first SETTINGS frame, in
/// place of the larger one NIO's HTTP/2 handler enforces (`HTTP2StreamAdmission` says why). It
/// sits between TLS and that handler, looks at the connection's first write only — the server
/// preface, which RFC 9113 §3.4 makes a SETTINGS frame — and leaves the pipeline once it is flushed.
final class AdvertisedStreamLimit: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    /// SETTINGS_MAX_CONCURRENT_STREAMS (RFC 9113 §6.5.2).
    private static let maxConcurrentStreams: UInt16 = 0x3
    private let advertised: UInt32

    init(advertised: Int) {
        self.advertised = UInt32(advertised)
    }

    private var rewritten = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !rewritten, case .byteBuffer(var buffer) = unwrapOutboundIn(data) else {
            return context.write(data, promise: promise)
        }
        rewritten = true
        rewrite(&buffer)
        context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: promise)
    }

    /// Once the preface is on its way, nothing more is looked at.
    func flush(context: ChannelHandlerContext) {
        context.flush()
        if rewritten { context.pipeline.syncOperations.removeHandler(context: context, promise: nil) }
    }

    /// Sets the value of SETTINGS_MAX_CONCURRENT_STREAMS in the SETTINGS frame that starts
    /// `buffer` (unchanged when it holds no such frame or setting).
    func rewrite(_ buffer: inout ByteBuffer) {
        let start = buffer.readerIndex
        guard let length = buffer.getInteger(at: start, as: UInt32.self).map({ Int($0 >> 8) }),
            buffer.getInteger(at: start + 3, as: UInt8.self) == 0x4,  // SETTINGS
            buffer.getInteger(at: start + 4, as: UInt8.self) == 0,  // not an ACK
            buffer.getInteger(at: start + 5, as: UInt32.self) == 0,  // the connection's stream
            length % 6 == 0, buffer.readableBytes >= 9 + length
        else { return }
        var offset = start + 9
        while offset < start + 9 + length {
            if buffer.getInteger(at: offset, as: UInt16.self) == Self.maxConcurrentStreams {
                buffer.setInteger(advertised, at: offset + 2)
            }
            offset += 6
        }
    }
}

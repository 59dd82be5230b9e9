import NIOCore
import NIOEmbedded

/// Plays the network for the targets that run a pipeline on an `EmbeddedChannel` (the HTTP
/// edge, the WebSocket session): a peer's bytes arrive in reads of the size the input chose,
/// what the handlers scheduled runs after each, timers then run out and the peer goes away.
enum EmbeddedConnection {
    /// Everything the handlers wrote, in order.
    static func exchange(_ channel: EmbeddedChannel, bytes: [UInt8], readSize: Int) -> ByteBuffer {
        var written = ByteBuffer()
        func collect() {
            while let buffer = try? channel.readOutbound(as: ByteBuffer.self) {
                written.writeImmutableBuffer(buffer)
            }
        }
        for chunk in FuzzInput.chunks(bytes, size: readSize) where channel.isActive {
            _ = try? channel.writeInbound(ByteBuffer(bytes: chunk))
            // What the handlers scheduled (the upgrade's pipeline change, replies) runs now.
            channel.embeddedEventLoop.run()
            collect()
        }
        // Timers (keepalive, header and close timeouts) run out, then the peer goes away.
        channel.embeddedEventLoop.advanceTime(by: .seconds(120))
        collect()
        _ = try? channel.finish(acceptAlreadyClosed: true)
        collect()
        return written
    }
}

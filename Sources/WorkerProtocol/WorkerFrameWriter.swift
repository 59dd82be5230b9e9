import NIOCore

/// Writes worker-protocol frames to a link, with one buffer and one flush per event-loop tick.
///
/// A link carries many client connections. Every frame written while the loop works through its
/// queue is encoded straight into one `ByteBuffer`, which goes to the socket once, after the
/// tasks already queued: one `write` for the lot instead of one per message. Frames never travel
/// the channel pipeline one by one — that cost a boxed `NIOAny`, a dynamic cast and a buffer per
/// frame, about a fifth of a worker's time at 70,000 messages a second. A payload over
/// `separatePayloadBytes` is not copied into the buffer but written after it, as it is.
///
/// Callable from any thread; the buffer lives in a `NIOLoopBoundBox` on the channel's event loop.
public final class WorkerFrameWriter: Sendable {
    /// Payloads from this size on go to the socket as they are instead of being copied.
    public static let separatePayloadBytes = 16 * 1024
    /// A buffer that grew past this (a burst) is not kept for the next tick.
    static let keptCapacity = 256 * 1024

    public let channel: any Channel
    /// The event loop's part.
    private struct Buffered {
        /// Frames encoded since the last flush.
        var pending: ByteBuffer
        /// Whether a flush is queued on the loop.
        var flushQueued = false
    }
    private let buffered: NIOLoopBoundBox<Buffered>
    /// Called on the loop just before each flush; what it writes goes out with the flush.
    private let willFlush: (@Sendable (WorkerFrameWriter) -> Void)?

    /// `willFlush` lets the owner add frames it batches itself (a worker's credit) to the write.
    public init(channel: any Channel, willFlush: (@Sendable (WorkerFrameWriter) -> Void)? = nil) {
        self.channel = channel
        self.buffered = .makeBoxSendingValue(
            Buffered(pending: channel.allocator.buffer(capacity: 4096)),
            eventLoop: channel.eventLoop
        )
        self.willFlush = willFlush
    }

    /// Makes sure a flush comes at the end of the current tick, with nothing new to write yet
    /// (so `willFlush` runs).
    public func flushSoon() {
        let loop = channel.eventLoop
        if loop.inEventLoop {
            queueFlush()
        } else {
            loop.execute { self.queueFlush() }
        }
    }

    /// Queues `frame`; it goes out at the end of the current tick.
    public func write(_ frame: WorkerFrame) {
        let loop = channel.eventLoop
        if loop.inEventLoop {
            writeOnLoop(frame)
        } else {
            loop.execute { self.writeOnLoop(frame) }
        }
    }

    /// Writes `frame` and everything queued before it, now (the hello exchange, which nothing may
    /// precede).
    public func writeAndFlush(_ frame: WorkerFrame) {
        let loop = channel.eventLoop
        if loop.inEventLoop {
            writeOnLoop(frame)
            flushNow()
        } else {
            loop.execute {
                self.writeOnLoop(frame)
                self.flushNow()
            }
        }
    }

    private func writeOnLoop(_ frame: WorkerFrame) {
        if let payload = WorkerFrameCodec.encodeHead(
            frame,
            into: &buffered.value.pending,
            separatingPayloadsFrom: Self.separatePayloadBytes
        ) {
            // Order on the wire: what is buffered, then this payload.
            hand(buffered.value.pending)
            hand(payload)
            buffered.value.pending = channel.allocator.buffer(capacity: 4096)
        }
        queueFlush()
    }

    private func queueFlush() {
        guard !buffered.value.flushQueued else { return }
        buffered.value.flushQueued = true
        // Queued behind the tasks already waiting, so their frames share this flush.
        channel.eventLoop.execute { self.flushNow() }
    }

    private func flushNow() {
        // Still marked as queued while `willFlush` writes, so its frames queue no second flush.
        willFlush?(self)
        buffered.value.flushQueued = false
        if buffered.value.pending.readableBytes > 0 { hand(buffered.value.pending) }
        channel.pipeline.syncOperations.flush()
        if buffered.value.pending.capacity > Self.keptCapacity {
            buffered.value.pending = channel.allocator.buffer(capacity: 4096)
        } else {
            // Written by now in the usual case, so the storage is ours again and is reused; if the
            // socket was full, `clear` takes fresh storage rather than touching the queued bytes.
            buffered.value.pending.clear()
        }
    }

    /// Passes bytes to the channel. `NIOAny(ByteBuffer)` specialised here is a plain wrap; the
    /// generic `Channel.write` would box and cast at run time.
    private func hand(_ bytes: ByteBuffer) {
        channel.pipeline.syncOperations.write(NIOAny(bytes), promise: nil)
    }
}

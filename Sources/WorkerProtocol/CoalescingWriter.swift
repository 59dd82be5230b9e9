import NIOCore

/// Writes worker-protocol frames to a link and flushes once per event-loop tick rather than
/// once per frame: a link carries many client connections, and every frame written while the
/// loop works through its queue goes out with a single flush — one `writev` instead of one
/// `write` per message. Callable from any thread.
public final class CoalescingWriter: Sendable {
    public let channel: any Channel
    /// Whether a flush is already queued on the channel's loop (touched only there).
    private let flushQueued: NIOLoopBoundBox<Bool>

    public init(channel: any Channel) {
        self.channel = channel
        self.flushQueued = NIOLoopBoundBox(false, eventLoop: channel.eventLoop)
    }

    public func write(_ frame: WorkerFrame) {
        let loop = channel.eventLoop
        if loop.inEventLoop {
            writeOnLoop(frame)
        } else {
            loop.execute { self.writeOnLoop(frame) }
        }
    }

    private func writeOnLoop(_ frame: WorkerFrame) {
        channel.write(frame, promise: nil)
        guard !flushQueued.value else { return }
        flushQueued.value = true
        // Queued behind the tasks already waiting, so their frames share this flush.
        channel.eventLoop.execute {
            self.flushQueued.value = false
            self.channel.flush()
        }
    }
}

import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Runs work on an event loop after the loop has next polled its sockets: for a session that
/// has had its share of the loop and must let the loop's other channels go first.
///
/// NIO has no such yield. A task scheduled from a task runs in the same tick, before any socket
/// is polled again, and a timer due "just after now" is run at once when the tick took longer
/// than that. So each loop gets a pipe it watches: a byte written to it makes the loop's next
/// poll report it, and the queue runs then, among the tick's other I/O events.
///
/// One per server; each loop's pipe is made on first use, from that loop.
public final class EventLoopYield: Sendable {
    private let queues = NIOLockedValueBox<[ObjectIdentifier: Queue]>([:])
    private let closed = NIOLockedValueBox(false)

    public init() {}

    /// Runs `work` on `eventLoop` once the loop has next polled its sockets. Called on that loop.
    /// After `close()`, or when the loop's pipe could not be made, `work` runs as a task.
    public func afterNextPoll(on eventLoop: any EventLoop, _ work: @escaping () -> Void) {
        eventLoop.preconditionInEventLoop()
        guard let queue = queue(for: eventLoop) else {
            return eventLoop.assumeIsolated().execute(work)
        }
        queue.append(work)
    }

    /// Closes the loops' pipes. Work queued and not run yet runs as tasks.
    public func close() {
        let all = closed.withLockedValue { closed in
            closed = true
            return queues.withLockedValue { queues in
                defer { queues = [:] }
                return Array(queues.values)
            }
        }
        for queue in all { queue.close() }
    }

    private func queue(for eventLoop: any EventLoop) -> Queue? {
        let key = ObjectIdentifier(eventLoop)
        return closed.withLockedValue { closed in
            guard !closed else { return nil }
            return queues.withLockedValue { queues in
                if let queue = queues[key] { return queue }
                guard let queue = Queue(eventLoop: eventLoop) else { return nil }
                queues[key] = queue
                return queue
            }
        }
    }

    /// The work waiting for a loop's next poll.
    private struct Waiting {
        var work: [() -> Void] = []
        /// A byte is in the pipe and not read yet.
        var signalled = false
    }

    /// One loop's pipe and the work waiting for its next poll.
    private final class Queue: Sendable {
        private let eventLoop: any EventLoop
        private let writeEnd: CInt
        private let waiting: NIOLoopBoundBox<Waiting>
        private let channel: EventLoopFuture<any Channel>

        init?(eventLoop: any EventLoop) {
            var ends: [CInt] = [0, 0]
            guard pipe(&ends) == 0 else { return nil }
            for end in ends {
                _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
                _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            }
            self.eventLoop = eventLoop
            self.writeEnd = ends[1]
            self.waiting = NIOLoopBoundBox(Waiting(), eventLoop: eventLoop)
            let waiting = self.waiting
            self.channel = NIOPipeBootstrap(group: eventLoop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(Reader(waiting: waiting))
                    }
                }
                .takingOwnershipOfDescriptor(input: ends[0])
        }

        func append(_ work: @escaping () -> Void) {
            waiting.value.work.append(work)
            guard !waiting.value.signalled else { return }
            waiting.value.signalled = true
            var byte: UInt8 = 1
            // The pipe holds at most one unread byte, so it is never full.
            _ = write(writeEnd, &byte, 1)
        }

        func close() {
            let writeEnd = self.writeEnd
            channel.whenComplete { result in
                if case .success(let channel) = result { channel.close(promise: nil) }
                Glibc.close(writeEnd)
            }
        }
    }

    /// Reads the pipe's byte and runs what waited for it. Work queued meanwhile waits for the
    /// next poll: a session that ends its turn again yields again.
    private final class Reader: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let waiting: NIOLoopBoundBox<Waiting>

        init(waiting: NIOLoopBoundBox<Waiting>) {
            self.waiting = waiting
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let work = waiting.value.work
            waiting.value = Waiting()
            for item in work { item() }
        }

        /// A closed pipe runs what is left, so no session waits for a turn forever.
        func channelInactive(context: ChannelHandlerContext) {
            let work = waiting.value.work
            waiting.value = Waiting()
            for item in work { item() }
            context.fireChannelInactive()
        }
    }
}

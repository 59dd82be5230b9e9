import NIOConcurrencyHelpers
import NIOCore
import WorkerProtocol

/// The worker's end of one gateway link: answers the hello, turns frames into events, and
/// returns credit as the application consumes messages.
final class ServerLinkHandler: ChannelInboundHandler {
    typealias InboundIn = WorkerFrame
    typealias OutboundOut = WorkerFrame

    /// A link as the rest of the worker sees it: thread-safe writes and credit accounting.
    final class Link: Sendable {
        let channel: any Channel
        private let creditWindow: Int
        /// Connection → (messages, bytes) consumed but not yet returned.
        private let due = NIOLockedValueBox<(pending: [UInt64: (UInt32, UInt32)], flushScheduled: Bool)>(([:], false))

        private let writer: CoalescingWriter

        init(channel: any Channel, creditWindow: Int) {
            self.channel = channel
            self.creditWindow = creditWindow
            self.writer = CoalescingWriter(channel: channel)
        }

        /// Sends and flushes once per event-loop tick (many connections share the link).
        func write(_ frame: WorkerFrame) {
            writer.write(frame)
        }

        /// Credit goes back in batches: at once when a quarter of the window is due, otherwise
        /// at the end of the current event-loop tick.
        func consumed(connection: UInt64, bytes: Int) {
            let (sendNow, scheduleFlush): ((UInt32, UInt32)?, Bool) = due.withLockedValue { state in
                var entry = state.pending[connection] ?? (0, 0)
                entry.0 += 1
                entry.1 += UInt32(max(bytes, 1))
                if Int(entry.1) >= creditWindow / 4 {
                    state.pending[connection] = nil
                    return (entry, false)
                }
                state.pending[connection] = entry
                let schedule = !state.flushScheduled
                state.flushScheduled = true
                return (nil, schedule)
            }
            if let sendNow {
                write(.credit(connection: connection, messages: sendNow.0, bytes: sendNow.1))
            }
            if scheduleFlush {
                channel.eventLoop.execute { self.flush() }
            }
        }

        private func flush() {
            let pending = due.withLockedValue { state in
                defer {
                    state.pending.removeAll()
                    state.flushScheduled = false
                }
                return state.pending
            }
            for (connection, entry) in pending {
                channel.write(WorkerFrame.credit(connection: connection, messages: entry.0, bytes: entry.1), promise: nil)
            }
            if !pending.isEmpty { channel.flush() }
        }

        func forget(_ connection: UInt64) {
            due.withLockedValue { _ = $0.pending.removeValue(forKey: connection) }
        }
    }

    private let worker: Worker
    private var link: Link?
    private var helloDone = false

    init(worker: Worker) {
        self.worker = worker
    }

    func channelActive(context: ChannelHandlerContext) {
        link = Link(channel: context.channel, creditWindow: worker.configuration.credit)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let link else { return }
        let frame = unwrapInboundIn(data)
        if !helloDone {
            guard case .hello(let hello) = frame, hello.minVersion <= 1, hello.maxVersion >= 1 else {
                return fail(context: context, "expected a hello for version 1, got \(frame.type)")
            }
            helloDone = true
            worker.linkStarted(link)
            context.writeAndFlush(wrapOutboundOut(.helloAck(.init(
                maxFrameBytes: UInt32(worker.configuration.maxFrameBytes),
                initialCredit: UInt32(worker.configuration.credit),
                worker: worker.configuration.name
            ))), promise: nil)
            return
        }
        switch frame {
        case .open(let open):
            worker.opened(Worker.Connection(id: open.connection, resumed: open.resumed, verdictRequired: open.verdictRequired, fields: open.fields), on: link)
        case .message(let connection, let kind, let payload):
            worker.received(Worker.Message(kind: kind, data: payload), for: connection, on: link)
        case .closed(let connection, let code, let reason):
            link.forget(connection)
            worker.closed(connection, code: code == 0 || code == 1005 ? nil : code, reason: reason)
        default:
            fail(context: context, "a gateway does not send \(frame.type) frames")
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let link { worker.linkEnded(link) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context: context, "\(error)")
    }

    private func fail(context: ChannelHandlerContext, _ message: String) {
        FileHandleStandardError.write("wssgate worker: closing a gateway link: \(message)\n")
        context.close(promise: nil)
    }
}

enum FileHandleStandardError {
    static func write(_ text: String) {
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
}

#if canImport(Glibc)
import Glibc
#endif

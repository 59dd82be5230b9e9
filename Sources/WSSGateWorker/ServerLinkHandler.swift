import NIOConcurrencyHelpers
import NIOCore
import WorkerProtocol

/// The worker's end of one gateway link: answers the hello, turns frames into events, and
/// returns credit as the application consumes messages. It is the link's only handler: it
/// splits the bytes into frames itself (`WorkerFrameReader`), and writes go through
/// `WorkerFrameWriter`.
final class ServerLinkHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    /// A link as the rest of the worker sees it: thread-safe writes and credit accounting.
    final class Link: Sendable {
        let channel: any Channel
        /// The hello's gateway name: every link from one gateway carries the same one.
        let gateway: NIOLockedValueBox<String?> = NIOLockedValueBox(nil)
        /// The version agreed in the hello exchange (2 when the gateway speaks it).
        let version = NIOLockedValueBox<UInt16>(1)
        private let creditWindow: Int
        /// Connection → (messages, bytes) consumed but not yet returned.
        private let due = NIOLockedValueBox<[UInt64: (UInt32, UInt32)]>([:])
        private let writer: WorkerFrameWriter

        /// Links in the order they were made: a gateway's publishes go over its oldest one, so
        /// they stay in order.
        let sequence = Link.sequences.withLockedValue {
            $0 += 1
            return $0
        }
        private static let sequences = NIOLockedValueBox<UInt64>(0)

        init(channel: any Channel, creditWindow: Int) {
            self.channel = channel
            self.creditWindow = creditWindow
            let due = self.due
            // Credit still due goes out with the tick's frames, in the same write.
            self.writer = WorkerFrameWriter(channel: channel) { writer in
                let pending = due.withLockedValue { due in
                    defer { due.removeAll(keepingCapacity: true) }
                    return due
                }
                for (connection, entry) in pending {
                    writer.write(.credit(connection: connection, messages: entry.0, bytes: entry.1))
                }
            }
        }

        /// Sends and flushes once per event-loop tick (many connections share the link).
        func write(_ frame: WorkerFrame) {
            writer.write(frame)
        }

        func writeAndFlush(_ frame: WorkerFrame) {
            writer.writeAndFlush(frame)
        }

        /// Credit goes back in batches: at once when a quarter of the window is due, otherwise
        /// with the link's next flush, at the end of the current event-loop tick.
        func consumed(connection: UInt64, bytes: Int) {
            let sendNow: (UInt32, UInt32)? = due.withLockedValue { due in
                var entry = due[connection] ?? (0, 0)
                entry.0 += 1
                entry.1 += UInt32(max(bytes, 1))
                if Int(entry.1) >= creditWindow / 4 {
                    due[connection] = nil
                    return entry
                }
                due[connection] = entry
                return nil
            }
            if let sendNow {
                write(.credit(connection: connection, messages: sendNow.0, bytes: sendNow.1))
            } else {
                writer.flushSoon()
            }
        }

        func forget(_ connection: UInt64) {
            due.withLockedValue { _ = $0.removeValue(forKey: connection) }
        }
    }

    private let worker: Worker
    private var link: Link?
    private var helloDone = false
    private var reader: WorkerFrameReader
    /// The gateway broke the protocol: nothing more is read from this link.
    private var broken = false

    init(worker: Worker) {
        self.worker = worker
        self.reader = WorkerFrameReader(maxFrameBytes: worker.configuration.maxFrameBytes)
    }

    func channelActive(context: ChannelHandlerContext) {
        link = Link(channel: context.channel, creditWindow: worker.configuration.credit)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let link, !broken else { return }
        reader.append(unwrapInboundIn(data))
        do {
            while !broken, let frame = try reader.next() {
                handle(frame, link: link, context: context)
            }
        } catch {
            fail(context: context, error.description)
        }
    }

    private func handle(_ frame: WorkerFrame, link: Link, context: ChannelHandlerContext) {
        if !helloDone {
            guard case .hello(let hello) = frame, hello.minVersion <= WorkerFrame.currentVersion, hello.maxVersion >= 1
            else {
                return fail(
                    context: context,
                    "expected a hello for versions 1–\(WorkerFrame.currentVersion), got \(frame.type)"
                )
            }
            helloDone = true
            let version = min(hello.maxVersion, WorkerFrame.currentVersion)
            link.gateway.withLockedValue { $0 = hello.gateway }
            link.version.withLockedValue { $0 = version }
            worker.linkStarted(link)
            link.writeAndFlush(
                .helloAck(
                    .init(
                        version: version,
                        maxFrameBytes: UInt32(worker.configuration.maxFrameBytes),
                        initialCredit: UInt32(worker.configuration.credit),
                        worker: worker.configuration.name
                    )
                )
            )
            return
        }
        switch frame {
        case .open(let open):
            worker.opened(
                Worker.Connection(
                    id: open.connection,
                    resumed: open.resumed,
                    verdictRequired: open.verdictRequired,
                    fields: open.fields,
                    attachment: open.attachment.map { Array($0.readableBytesView) }
                ),
                on: link
            )
        case .message(let connection, let kind, let payload):
            worker.received(Worker.Message(kind: kind, data: payload), for: connection, on: link)
        case .closed(let connection, let code, let reason):
            link.forget(connection)
            worker.closed(connection, code: code == 0 || code == 1005 ? nil : code, reason: reason)
        case .suspend(let connection):
            worker.suspended(connection, on: link)
        case .subscribed(let answer):
            worker.history.subscribed(answer)
        case .recorded(let request, let status, let position):
            worker.history.recorded(request, status: status, position: position)
        default:
            fail(context: context, "a gateway does not send \(frame.type) frames")
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !broken {
            do { try reader.finish() } catch { fail(context: context, error.description) }
        }
        if let link { worker.linkEnded(link) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context: context, "\(error)")
    }

    private func fail(context: ChannelHandlerContext, _ message: String) {
        guard !broken else { return }
        broken = true
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

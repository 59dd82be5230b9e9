import Logging
import NIOCore
import WorkerProtocol

/// The gateway's connection to one worker instance, after a successful hello.
final class WorkerLink: Sendable {
    let id: UInt64
    let instance: String
    let channel: any Channel
    /// Per-connection message bytes the worker takes before returning credit.
    let initialCredit: Int
    /// Largest frame the worker accepts.
    let maxFrameBytes: Int
    private let writer: WorkerFrameWriter

    init(id: UInt64, instance: String, channel: any Channel, initialCredit: Int, maxFrameBytes: Int) {
        self.id = id
        self.instance = instance
        self.channel = channel
        self.initialCredit = initialCredit
        self.maxFrameBytes = maxFrameBytes
        self.writer = WorkerFrameWriter(channel: channel)
    }

    func write(_ frame: WorkerFrame) {
        writer.write(frame)
    }
}

/// Drives one link: sends the hello, waits for the worker's, then hands every frame to the pool.
/// A frame that breaks the protocol ends the link (with a logged error); the pool carries on
/// with the other instances and reconnects this one. It is the link's only handler: it splits
/// the bytes into frames itself (`WorkerFrameReader`), and writes go through `WorkerFrameWriter`.
final class WorkerLinkHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private enum State {
        case awaitingHello
        case ready(WorkerLink)
        case closed
    }

    private let instance: String
    private let linkID: UInt64
    private let maxFrameBytes: Int
    private let helloTimeout: TimeAmount
    private unowned let pool: WorkerPool
    private let logger: Logger
    private var state = State.awaitingHello
    private var helloTimer: Scheduled<Void>?
    private var reader: WorkerFrameReader
    /// The worker broke the protocol: nothing more is read from this link.
    private var broken = false

    init(
        instance: String,
        linkID: UInt64,
        maxFrameBytes: Int,
        helloTimeout: TimeAmount,
        pool: WorkerPool,
        logger: Logger
    ) {
        self.instance = instance
        self.linkID = linkID
        self.maxFrameBytes = maxFrameBytes
        self.helloTimeout = helloTimeout
        self.pool = pool
        self.logger = logger
        self.reader = WorkerFrameReader(maxFrameBytes: maxFrameBytes)
    }

    func channelActive(context: ChannelHandlerContext) {
        let hello = WorkerFrameCodec.encode(
            .hello(.init(maxFrameBytes: UInt32(maxFrameBytes), gateway: "wssgate")),
            allocator: context.channel.allocator
        )
        context.writeAndFlush(NIOAny(hello), promise: nil)
        helloTimer = context.eventLoop.assumeIsolated().scheduleTask(in: helloTimeout) { [self] in
            if case .awaitingHello = self.state {
                self.logger.error("worker did not answer hello", metadata: ["instance": .string(self.instance)])
                self.pool.countLinkError()
                context.close(promise: nil)
            }
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !broken else { return }
        reader.append(unwrapInboundIn(data))
        do {
            while !broken, let frame = try reader.next() {
                handle(frame, context: context)
            }
        } catch {
            protocolError(context: context, error)
        }
    }

    private func handle(_ frame: WorkerFrame, context: ChannelHandlerContext) {
        switch state {
        case .awaitingHello:
            guard case .helloAck(let ack) = frame else {
                return protocolError(
                    context: context,
                    WorkerProtocolError(.unexpectedFrame, "expected hello, got \(frame.type)")
                )
            }
            guard ack.version == 1 else {
                return protocolError(
                    context: context,
                    WorkerProtocolError(.badHello, "worker chose version \(ack.version); this gateway speaks 1")
                )
            }
            guard ack.initialCredit > 0, ack.maxFrameBytes >= 64 else {
                return protocolError(
                    context: context,
                    WorkerProtocolError(.badHello, "worker offered no credit or a frame limit under 64 bytes")
                )
            }
            helloTimer?.cancel()
            let link = WorkerLink(
                id: linkID,
                instance: instance,
                channel: context.channel,
                initialCredit: Int(ack.initialCredit),
                maxFrameBytes: Int(ack.maxFrameBytes)
            )
            state = .ready(link)
            logger.info(
                "worker linked",
                metadata: [
                    "instance": .string(instance), "worker": .string(ack.worker),
                    "credit": .stringConvertible(ack.initialCredit),
                ]
            )
            pool.linkReady(link)
        case .ready(let link):
            do {
                try pool.handle(frame, from: link)
            } catch {
                protocolError(context: context, error)
            }
        case .closed:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !broken {
            do { try reader.finish() } catch { protocolError(context: context, error) }
        }
        helloTimer?.cancel()
        if case .ready(let link) = state { pool.linkLost(link) }
        state = .closed
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? WorkerProtocolError {
            return protocolError(context: context, error)
        }
        pool.countLinkError()
        logger.warning("worker link error", metadata: ["instance": .string(instance), "error": .string("\(error)")])
        context.close(promise: nil)
    }

    private func protocolError(context: ChannelHandlerContext, _ error: WorkerProtocolError) {
        guard !broken else { return }
        broken = true
        pool.countLinkError()
        logger.error(
            "worker broke the protocol; closing its link",
            metadata: ["instance": .string(instance), "error": .string(error.description)]
        )
        context.close(promise: nil)
    }
}

import GatewayCore
import GatewayHub
import GatewayWebSocket
import Logging
import NIOCore
import NIOWebSocket
import WorkerProtocol

/// Drives one link: sends the hello, waits for the worker's, then carries out every frame the
/// worker sends. It is the link's only handler: it splits the bytes into frames itself
/// (`WorkerFrameReader`), and writes go through the link's `WorkerFrameWriter`.
///
/// A frame about a connection finds it in the link's own table (`WorkerLink`), on this loop:
/// the reply path takes no lock and never asks the pool. A frame that breaks the protocol ends
/// the link with a logged error, and the pool treats that as a dead instance: its connections
/// wait for another link, and the instance is linked again after a backoff that grows while it
/// keeps breaking it.
final class WorkerLinkHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    /// How a link ended, for the pool's backoff.
    enum Outcome: Sendable, Equatable {
        /// It worked until it closed (the worker stopped, or the gateway did).
        case ended
        /// No hello in time, a bad hello, or a frame that broke the protocol.
        case broken
    }

    /// The name in every hello this gateway process sends: a worker tells by it which links
    /// come from one gateway (it publishes over one of them).
    static let gatewayName = "wssgate/\(String(UInt64.random(in: 1...UInt64.max), radix: 16))"

    private enum State {
        case awaitingHello
        case ready(WorkerLink)
        case closed
    }

    private let instance: Int
    private let instanceName: String
    private let linkID: UInt64
    private let maxFrameBytes: Int
    private let helloTimeout: TimeAmount
    let pool: WorkerPool
    private let logger: Logger
    private let outcome: EventLoopPromise<Outcome>
    private var state = State.awaitingHello
    private var helloTimer: Scheduled<Void>?
    private var reader: WorkerFrameReader
    /// The worker broke the protocol: nothing more is read from this link.
    private var broken = false

    init(
        instance: Int,
        instanceName: String,
        linkID: UInt64,
        maxFrameBytes: Int,
        helloTimeout: TimeAmount,
        pool: WorkerPool,
        logger: Logger,
        outcome: EventLoopPromise<Outcome>
    ) {
        self.instance = instance
        self.instanceName = instanceName
        self.linkID = linkID
        self.maxFrameBytes = maxFrameBytes
        self.helloTimeout = helloTimeout
        self.pool = pool
        self.logger = logger
        self.outcome = outcome
        self.reader = WorkerFrameReader(maxFrameBytes: maxFrameBytes)
    }

    func channelActive(context: ChannelHandlerContext) {
        let hello = WorkerFrameCodec.encode(
            .hello(.init(maxFrameBytes: UInt32(maxFrameBytes), gateway: Self.gatewayName)),
            allocator: context.channel.allocator
        )
        context.writeAndFlush(NIOAny(hello), promise: nil)
        helloTimer = context.eventLoop.assumeIsolated().scheduleTask(in: helloTimeout) { [self] in
            if case .awaitingHello = self.state {
                self.protocolError(
                    context: context,
                    WorkerProtocolError(
                        .badHello,
                        "no hello_ack within \(self.helloTimeout.nanoseconds / 1_000_000) ms"
                    )
                )
            }
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !broken else { return }
        reader.append(unwrapInboundIn(data))
        // Once per read, not per frame: `worker.idle_stop` needs no finer clock.
        if case .ready(let link) = state { link.touch() }
        do {
            while !broken, let frame = try reader.next() {
                try handle(frame, context: context)
            }
        } catch {
            protocolError(context: context, error)
        }
    }

    private func handle(_ frame: WorkerFrame, context: ChannelHandlerContext) throws(WorkerProtocolError) {
        switch state {
        case .awaitingHello:
            guard case .helloAck(let ack) = frame else {
                throw WorkerProtocolError(.unexpectedFrame, "expected hello_ack, got \(frame.type)")
            }
            guard (1...WorkerFrame.currentVersion).contains(ack.version) else {
                throw WorkerProtocolError(
                    .badHello,
                    "worker chose version \(ack.version); this gateway speaks 1 to \(WorkerFrame.currentVersion)"
                )
            }
            guard ack.initialCredit > 0, ack.maxFrameBytes >= 64 else {
                throw WorkerProtocolError(.badHello, "worker offered no credit or a frame limit under 64 bytes")
            }
            helloTimer?.cancel()
            let link = WorkerLink(
                id: linkID,
                instance: instance,
                instanceName: instanceName,
                channel: context.channel,
                initialCredit: Int(ack.initialCredit),
                maxFrameBytes: Int(ack.maxFrameBytes),
                version: ack.version
            )
            state = .ready(link)
            logger.debug(
                "worker linked",
                metadata: [
                    "instance": .string(instanceName), "worker": .string(ack.worker),
                    "version": .stringConvertible(ack.version),
                    "credit": .stringConvertible(ack.initialCredit),
                    "frame_limit": .stringConvertible(ack.maxFrameBytes),
                ]
            )
            pool.linkReady(link)
        case .ready(let link):
            try carryOut(frame, on: link)
        case .closed:
            break
        }
    }

    /// A worker's frame, on the link's loop. Frames about connections that are not (or no
    /// longer) open on this link are ignored: they raced with a close.
    private func carryOut(_ frame: WorkerFrame, on link: WorkerLink) throws(WorkerProtocolError) {
        switch frame {
        case .send(let id, let kind, let payload):
            // A text message must be UTF-8, or the client would fail the
            // connection (1007) for the worker's mistake.
            if kind == .text, !UTF8Validator.isValid(payload) {
                throw WorkerProtocolError(.invalidValue, "send of a text message that is not UTF-8 (connection \(id))")
            }
            let message = WebSocketMessage(kind: .init(kind), data: payload)
            if let connection = link.connection(id) {
                connection.deliver(message)
            } else if let remote = pool.remote, remote.isRemote(id) {
                remote.send(message, to: id)
            }
        case .credit(let id, let messages, let bytes):
            link.connection(id)?.creditReturned(messages: messages, bytes: bytes, from: link)
        case .close(let id, let code, let reason):
            if let connection = link.connection(id) {
                connection.closeRequested(code: code, reason: reason)
            } else if let remote = pool.remote, remote.isRemote(id) {
                let valid = WebSocketErrorCode.isValidOnWire(code)
                remote.close(id, code: valid ? WebSocketErrorCode(code: code) : .normalClosure, reason: reason)
            }
        case .accept(let id):
            link.connection(id)?.verdictArrived(accepted: true, status: 101, reason: "")
        case .reject(let id, let status, let reason):
            guard let connection = link.connection(id) else { return }
            link.forget(id)
            connection.verdictArrived(accepted: false, status: status, reason: reason)
        case .release(let id):
            guard link.version >= 2 else { throw WorkerProtocolError(.unexpectedFrame, "release is version 2") }
            link.connection(id)?.releaseArrived(from: link)
        case .attach(let id, let data):
            guard link.version >= 2 else { throw WorkerProtocolError(.unexpectedFrame, "attach is version 2") }
            let limit = pool.attachmentLimit
            guard data.readableBytes <= limit else {
                throw WorkerProtocolError(
                    .invalidValue,
                    "attachment of \(data.readableBytes) bytes for connection \(id): the route takes at most \(limit)"
                )
            }
            link.connection(id)?.setAttachment(Array(data.readableBytesView), from: link)
        case .identify(let id, let user, let add, let remove):
            guard link.version >= 2 else { throw WorkerProtocolError(.unexpectedFrame, "identify is version 2") }
            if let user, !user.isEmpty, !SessionDirectory.Identity.isValidName(user) {
                throw WorkerProtocolError(
                    .invalidValue,
                    "'\(user)' is not a user id (1–255 bytes, no control characters)"
                )
            }
            for tag in add + remove where !SessionDirectory.Identity.isValidName(tag) {
                throw WorkerProtocolError(.invalidValue, "'\(tag)' is not a tag (1–255 bytes, no control characters)")
            }
            (link.connection(id) ?? pool.connection(id))?.identify(user: user, add: add, remove: remove)
        case .subscribe, .unsubscribe, .publish, .resume, .record, .sendTo, .closeTo:
            try carryOutHubCommand(frame, on: link)
        case .hello, .helloAck, .open, .message, .closed, .subscribed, .recorded, .suspend:
            throw WorkerProtocolError(.unexpectedFrame, "a worker does not send \(frame.type) frames")
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !broken {
            do { try reader.finish() } catch { protocolError(context: context, error) }
        }
        helloTimer?.cancel()
        if case .ready(let link) = state { pool.linkLost(link) }
        if case .awaitingHello = state, !broken { broken = true }
        state = .closed
        outcome.succeed(broken ? .broken : .ended)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? WorkerProtocolError {
            return protocolError(context: context, error)
        }
        pool.countLinkError()
        logger.warning(
            "worker link error",
            metadata: ["instance": .string(instanceName), "error": .string("\(error)")]
        )
        context.close(promise: nil)
    }

    private func protocolError(context: ChannelHandlerContext, _ error: WorkerProtocolError) {
        guard !broken else { return }
        broken = true
        pool.countLinkError()
        logger.error(
            "worker broke the protocol; closing its link",
            metadata: ["instance": .string(instanceName), "error": .string(error.description)]
        )
        context.close(promise: nil)
    }
}

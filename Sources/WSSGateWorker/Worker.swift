import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PercentEncoding
import WorkerProtocol

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A wssgate worker: listens on a Unix socket (by default `$WSSGATE_WORKER_SOCKET`, which the
/// gateway sets for the workers it supervises), speaks the worker protocol with the gateways that
/// connect, and presents what happens as one `AsyncSequence` of events.
///
/// ```swift
/// let worker = try await Worker.listen()
/// for await event in worker.events {
///     if case .message(let id, let message) = event { worker.send(message, to: id) }
/// }
/// ```
///
/// Credit for a message is returned to the gateway when the message is taken from `events`,
/// so a consumer that falls behind slows its clients down instead of queueing without bound.
///
/// A worker that answers at once, without awaiting anything, can take its events on the link's
/// event loop instead (`Worker.listen(_:handler:)`): no task switch per event, and what it sends
/// from the handler goes out with the same flush. That is the fast path (the echo worker uses
/// it); a handler must not block, because it holds up every connection of its link.
public final class Worker: Sendable {
    /// Called on the link's event loop for every event, in order per connection; credit for a
    /// message is returned when the call returns.
    public typealias Handler = @Sendable (Event, Worker) -> Void

    public struct Configuration: Sendable {
        /// Unix socket path; nil: `$WSSGATE_WORKER_SOCKET`.
        public var socketPath: String?
        public var name: String
        /// Message bytes per connection the gateway may send ahead of what was consumed.
        public var credit: Int
        public var maxFrameBytes: Int
        public init(
            socketPath: String? = nil,
            name: String? = nil,
            credit: Int = 256 * 1024,
            maxFrameBytes: Int = 16 << 20
        ) {
            self.socketPath = socketPath
            self.name = name ?? getenv("WSSGATE_WORKER_NAME").map { String(cString: $0) } ?? "swift-worker"
            self.credit = credit
            self.maxFrameBytes = maxFrameBytes
        }
    }

    public struct SetupError: Error, CustomStringConvertible {
        public var description: String
    }

    public let events: Events
    public let socketPath: String
    let configuration: Configuration
    private let continuation: AsyncStream<Delivery>.Continuation
    /// Connection → the link it came in on.
    let links = NIOLockedValueBox<[UInt64: ServerLinkHandler.Link]>([:])
    /// Every gateway link (publishes go to each).
    let allLinks = NIOLockedValueBox<[ObjectIdentifier: ServerLinkHandler.Link]>([:])
    private let server: NIOLockedValueBox<(any Channel)?> = NIOLockedValueBox(nil)
    private let handler: Handler?
    let history = HistoryRequests()

    init(configuration: Configuration, socketPath: String, handler: Handler?) {
        self.configuration = configuration
        self.socketPath = socketPath
        self.handler = handler
        let (stream, continuation) = AsyncStream<Delivery>.makeStream()
        self.continuation = continuation
        self.events = Events(stream: stream)
    }

    /// Binds the socket (mode 0600: only this user, which the gateway checks with SO_PEERCRED)
    /// and starts accepting gateway links.
    public static func listen(
        _ configuration: Configuration = .init(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> Worker {
        try await listen(configuration, group: group, handler: nil)
    }

    /// Like `listen(_:group:)`, but every event goes to `handler` on the link's event loop, and
    /// `events` stays empty. Use it when the work per event is short and synchronous.
    public static func listen(
        _ configuration: Configuration = .init(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        handler: @escaping Handler
    ) async throws -> Worker {
        try await listen(configuration, group: group, handler: Optional(handler))
    }

    private static func listen(
        _ configuration: Configuration,
        group: any EventLoopGroup,
        handler: Handler?
    ) async throws -> Worker {
        guard let path = configuration.socketPath ?? getenv("WSSGATE_WORKER_SOCKET").map({ String(cString: $0) }) else {
            throw SetupError(description: "no socket path: set WSSGATE_WORKER_SOCKET or Configuration.socketPath")
        }
        let worker = Worker(configuration: configuration, socketPath: path, handler: handler)
        let old = umask(0o177)
        defer { umask(old) }
        let channel = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(ServerLinkHandler(worker: worker))
                }
            }
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        worker.server.withLockedValue { $0 = channel }
        worker.watchParent(on: channel.eventLoop)
        return worker
    }

    /// A worker the gateway started (`WSSGATE_PARENT_PID`) shuts down once the gateway is gone:
    /// when it is killed outright it cannot stop its workers itself, and an orphan would hold
    /// its socket and memory for nothing.
    private func watchParent(on eventLoop: any EventLoop) {
        guard let text = getenv("WSSGATE_PARENT_PID").map({ String(cString: $0) }), let parent = pid_t(text), parent > 1
        else { return }
        eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { [self] task in
            guard getppid() != parent else { return }
            task.cancel()
            Task { await self.shutdown() }
        }
    }

    /// Stops accepting links and ends `events`.
    public func shutdown() async {
        let channel = server.withLockedValue { $0 }
        try? await channel?.close()
        for link in allLinks.withLockedValue({ Array($0.values) }) { link.channel.close(promise: nil) }
        continuation.finish()
    }

    // MARK: Internals

    func link(of connection: UInt64) -> ServerLinkHandler.Link? {
        links.withLockedValue { $0[connection] }
    }

    /// The connection's link, or any link for a connection held elsewhere (send and close).
    func commandLink(of connection: UInt64) -> ServerLinkHandler.Link? {
        if let link = link(of: connection) { return link }
        return allLinks.withLockedValue { $0.values.first }
    }

    func linkStarted(_ link: ServerLinkHandler.Link) {
        allLinks.withLockedValue { $0[ObjectIdentifier(link)] = link }
    }

    func opened(_ connection: Connection, on link: ServerLinkHandler.Link) {
        links.withLockedValue { $0[connection.id] = link }
        deliver(.open(connection), link: nil)
    }

    func received(_ message: Message, for connection: UInt64, on link: ServerLinkHandler.Link) {
        deliver(.message(connection, message), link: link)
    }

    /// The gateway takes the connection away (its instance goes to sleep, or a deploy moves it):
    /// the application sees `.suspended` after every earlier event of the connection, and the
    /// gateway gets `release` once it has taken it.
    func suspended(_ connection: UInt64, on link: ServerLinkHandler.Link) {
        deliver(.suspended(connection), link: link)
    }

    /// After the application took `.suspended`: the connection is no longer this worker's.
    func release(_ connection: UInt64, on link: ServerLinkHandler.Link?) {
        let held = links.withLockedValue { links -> ServerLinkHandler.Link? in
            guard let held = links[connection], held === link else { return nil }
            links[connection] = nil
            return held
        }
        held?.forget(connection)
        held?.write(.release(connection: connection))
    }

    func closed(_ connection: UInt64, code: UInt16?, reason: String) {
        links.withLockedValue { _ = $0.removeValue(forKey: connection) }
        deliver(.closed(connection, code: code, reason: reason), link: nil)
    }

    /// To the handler, on the link's loop (credit back when it returns), or into `events`.
    private func deliver(_ event: Event, link: ServerLinkHandler.Link?) {
        guard let handler else {
            continuation.yield(Delivery(event: event, link: link, worker: self))
            return
        }
        handler(event, self)
        switch event {
        case .message(let id, let message): link?.consumed(connection: id, bytes: message.data.readableBytes)
        case .suspended(let id): release(id, on: link)
        default: break
        }
    }

    func linkEnded(_ link: ServerLinkHandler.Link) {
        allLinks.withLockedValue { _ = $0.removeValue(forKey: ObjectIdentifier(link)) }
        history.linkEnded(ObjectIdentifier(link))
        let gone: [UInt64] = links.withLockedValue { links in
            let ids = links.filter { $0.value === link }.map(\.key)
            for id in ids { links[id] = nil }
            return ids
        }
        for id in gone { deliver(.closed(id, code: 1006, reason: "gateway link closed"), link: nil) }
    }
}

extension Worker {
    /// What happened, in order per connection.
    public enum Event: Sendable {
        case open(Connection)
        case message(UInt64, Message)
        /// `code` is nil when the client sent none.
        case closed(UInt64, code: UInt16?, reason: String)
        /// The connection leaves this worker while its client stays connected: its instance is
        /// put to sleep, or a deploy moves it. Nothing more comes for it here; it comes back
        /// (here or to another instance) as a resumed `open` carrying its attachment. The
        /// library tells the gateway once this event has been taken; commands sent for the
        /// connection before that still reach the client, later ones are ignored.
        case suspended(UInt64)
    }

    struct Delivery: Sendable {
        var event: Event
        /// For messages: where to return credit once consumed; for `suspended`, where to
        /// release the connection.
        var link: ServerLinkHandler.Link?
        var worker: Worker? = nil
    }

    /// The worker's events. Taking a message returns its credit to the gateway.
    public struct Events: AsyncSequence, Sendable {
        public typealias Element = Event
        let stream: AsyncStream<Delivery>

        public struct AsyncIterator: AsyncIteratorProtocol {
            var base: AsyncStream<Delivery>.AsyncIterator
            public mutating func next() async -> Event? {
                guard let delivery = await base.next() else { return nil }
                switch delivery.event {
                case .message(let id, let message):
                    delivery.link?.consumed(connection: id, bytes: message.data.readableBytes)
                case .suspended(let id):
                    delivery.worker?.release(id, on: delivery.link)
                default:
                    break
                }
                return delivery.event
            }
        }

        public func makeAsyncIterator() -> AsyncIterator {
            AsyncIterator(base: stream.makeAsyncIterator())
        }
    }

    /// A client connection as the gateway described it.
    public struct Connection: Sendable {
        public var id: UInt64
        /// Reopened on this instance after another one died; the client stayed connected.
        public var resumed: Bool
        /// The gateway waits for `accept` or `reject` before upgrading.
        public var verdictRequired: Bool
        public var fields: [(String, String)]
        /// What the worker attached to the connection (`attach`) before it left an instance:
        /// handed back when it is opened again (protocol version 2).
        public var attachment: [UInt8]?

        public func field(_ name: String) -> String? { fields.first { $0.0 == name }?.1 }
        public var path: String { field(OpenField.path) ?? "/" }
        /// The query string's parameters (percent-decoded).
        public var query: [String: String] {
            var result: [String: String] = [:]
            for (name, value) in PercentDecoding.pairs(ofQuery: field(OpenField.query) ?? "") { result[name] = value }
            return result
        }
    }

    /// A message: text or binary, the bytes as the client sent them.
    public struct Message: Sendable {
        public var kind: WorkerFrame.MessageKind
        public var data: ByteBuffer
        public init(kind: WorkerFrame.MessageKind, data: ByteBuffer) {
            self.kind = kind
            self.data = data
        }
        public init(text: String) { self.init(kind: .text, data: ByteBuffer(string: text)) }
        public init(binary: [UInt8]) { self.init(kind: .binary, data: ByteBuffer(bytes: binary)) }
        public var text: String? { kind == .text ? String(buffer: data) : nil }
    }
}

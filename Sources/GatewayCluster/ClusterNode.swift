import GatewayCore
import GatewayHub
import GatewayMetrics
import GatewayWebSocket
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOWebSocket
import RedisClient
import ServiceLifecycle

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// This gateway as one node of a cluster sharing topics and connections through Redis
/// (docs/cluster.md).
///
/// - Hub publishes are delivered locally first, then sent once to Redis (`PUBLISH` on the
///   topic's channel); every node receives them through one pattern subscription and delivers
///   them to its own subscribers, skipping its own (no node delivers a message twice).
/// - Commands for a connection another node holds (admin requests, workers' sends and closes)
///   go to that node's channel; admin requests get their answer back on ours.
/// - Presence: one Redis set per topic and node, refreshed every third of `presence_ttl`, so
///   a node that dies without saying goodbye disappears within the TTL.
/// - When Redis is unreachable, local delivery goes on, publishes for the other nodes are
///   counted as lost (never buffered), and the link reconnects with backoff and jitter.
public final class ClusterNode: Service, Hub.Observer, Hub.PresenceSource, RemoteConnections, Sendable {
    /// Unanswered publish bytes beyond which further publishes are dropped (and counted): a
    /// slow Redis must not grow the gateway.
    public static let maxOutstandingBytes = 16 << 20

    public let settings: ClusterSettings
    public let endpoint: RedisEndpoint
    let hub: Hub
    let sessions: SessionDirectory
    let logger: Logger
    let metrics = ClusterMetrics()

    struct State {
        var connection: RedisConnection?
        var shuttingDown = false
        var outstandingBytes = 0
        var nextRequest: UInt64 = 0
        var pending: [UInt64: (promise: EventLoopPromise<ForwardedResponse>, timer: Scheduled<Void>)] = [:]
        var lastError: String?
    }
    let state = NIOLockedValueBox(State())
    /// Recorded publications delivered here in offset order, gaps read back from the history.
    let recorded = NIOLockedValueBox(RecordedDelivery())
    let requestHandler = NIOLockedValueBox<
        (@Sendable (ForwardedRequest, any EventLoop) -> EventLoopFuture<ForwardedResponse>)?
    >(nil)
    /// The Redis link has a thread of its own: a fan-out burst keeps the client loops busy for
    /// seconds, and the link's replies (and its command timeout) must not wait behind it.
    let linkGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let loop: any EventLoop

    public init(
        settings: ClusterSettings,
        hub: Hub,
        sessions: SessionDirectory,
        logger: Logger
    ) throws(ConfigurationError) {
        self.settings = settings
        self.endpoint = RedisEndpoint(try RedisAddress(parsing: settings.redis))
        self.hub = hub
        self.sessions = sessions
        self.loop = linkGroup.next()
        var logger = logger
        logger[metadataKey: "node"] = .string(settings.node)
        self.logger = logger
        metrics.linked(false)
    }

    /// The top bits of this node's connection ids.
    public static func idBase(for settings: ClusterSettings) -> UInt64 {
        UInt64(settings.nodeNumber) << UInt64(ClusterSettings.connectionBits)
    }

    public var name: String { settings.node }
    public var number: Int { settings.nodeNumber }

    /// Whether Redis is reachable and this node registered.
    public var isLinked: Bool { state.withLockedValue { $0.connection?.isActive ?? false } }

    /// Why the node is degraded (nil when linked).
    public var degradedReason: String? {
        state.withLockedValue { state in
            state.connection?.isActive == true ? nil : "cluster link down" + (state.lastError.map { " (\($0))" } ?? "")
        }
    }

    /// Who answers admin requests forwarded from other nodes (the admin API).
    public func setRequestHandler(
        _ handler: @escaping @Sendable (ForwardedRequest, any EventLoop) -> EventLoopFuture<ForwardedResponse>
    ) {
        requestHandler.withLockedValue { $0 = handler }
    }

    var connection: RedisConnection? {
        state.withLockedValue { state in state.connection?.isActive == true ? state.connection : nil }
    }

    // MARK: Keys and channels

    var topicPattern: String { "\(settings.prefix):topic:*" }
    func topicChannel(_ topic: String) -> String { "\(settings.prefix):topic:\(topic)" }
    func nodeChannel(_ number: Int) -> String { "\(settings.prefix):node:\(number)" }
    var nodesKey: String { "\(settings.prefix):nodes" }
    var numberKey: String { "\(settings.prefix):nodenum:\(settings.nodeNumber)" }
    var member: String { "\(settings.nodeNumber)/\(settings.node)" }
    func presenceKey(_ topic: String, node: String) -> String { "\(settings.prefix):presence:\(topic):\(node)" }
    var ttlMillis: String { String(settings.presenceTTL.nanoseconds / 1_000_000) }

    static func nowMillis() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    // MARK: Service

    public func run() async throws {
        hub.setObserver(self)
        hub.setPresenceSource(self)
        await withGracefulShutdownHandler {
            var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(5))
            while !state.withLockedValue({ $0.shuttingDown }) {
                do {
                    let connection = try await RedisConnection.connect(
                        to: endpoint,
                        configuration: .init(
                            connectTimeout: .seconds(2),
                            commandTimeout: settings.requestTimeout,
                            clientName: "wssgate-\(settings.node)"
                        ),
                        group: loop
                    ) { [weak self] push in self?.received(push) }
                    try await register(on: connection)
                    state.withLockedValue {
                        $0.connection = connection
                        $0.lastError = nil
                    }
                    metrics.linked(true)
                    catchUpAfterRelink()
                    logger.info(
                        "cluster link up",
                        metadata: [
                            "redis": .string(endpoint.description),
                            "node_number": .stringConvertible(settings.nodeNumber),
                        ]
                    )
                    backoff.reset()
                    try await keepAlive(connection)
                } catch {
                    state.withLockedValue { $0.lastError = "\(error)" }
                    logger.warning(
                        "cluster link down",
                        metadata: ["redis": .string(endpoint.description), "error": .string("\(error)")]
                    )
                }
                let was = state.withLockedValue { state -> RedisConnection? in
                    defer { state.connection = nil }
                    return state.connection
                }
                metrics.linked(false)
                if state.withLockedValue({ $0.shuttingDown }) {
                    if let was, was.isActive { await goodbye(on: was) }
                    await was?.close()
                    break
                }
                await was?.close()
                await pause(backoff.next())
            }
        } onGracefulShutdown: {
            self.state.withLockedValue { $0.shuttingDown = true }
        }
        hub.setObserver(nil)
        hub.setPresenceSource(nil)
        try? await linkGroup.shutdownGracefully()
    }

    /// Waits before the next attempt; a shutdown ends the wait.
    func pause(_ amount: TimeAmount) async {
        try? await cancelWhenGracefulShutdown { try await Task.sleep(nanoseconds: UInt64(max(amount.nanoseconds, 0))) }
    }

    /// Claims the node number, subscribes, and writes this node's presence again (Redis may
    /// have restarted empty).
    func register(on connection: RedisConnection) async throws {
        let claimed = try await connection.send(["SET", numberKey, settings.node, "NX", "PX", ttlMillis])
        if claimed == .null {
            let owner = try await connection.send(["GET", numberKey]).string
            if let owner, owner != settings.node {
                throw ClusterError(
                    .nodeNumberTaken,
                    "node number \(settings.nodeNumber) is taken by node '\(owner)': rename this node or set cluster.node_number"
                )
            }
        }
        try await connection.subscribe("PSUBSCRIBE", [topicPattern])
        try await connection.subscribe("SUBSCRIBE", [nodeChannel(settings.nodeNumber)])
        for (topic, ids) in hub.subscriptionsByTopic() {
            let key = presenceKey(topic, node: settings.node)
            try await connection.send(["DEL", key])
            try await connection.send(["SADD", key] + ids.map { String($0) })
            try await connection.send(["PEXPIRE", key, ttlMillis])
        }
        try await heartbeat(on: connection)
    }

    /// Refreshes the node's registration and presence every third of the TTL while linked.
    func keepAlive(_ connection: RedisConnection) async throws {
        let interval = UInt64(max(settings.presenceTTL.nanoseconds / 3, 50_000_000))
        // Until the connection closes (at once, not at the next heartbeat) or the gateway stops.
        do {
            try await cancelWhenGracefulShutdown {
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    // A future's `get` does not hear a cancellation: this promise ends with the
                    // connection's close or with the task's cancellation, whichever is first.
                    let closed = self.loop.makePromise(of: Void.self)
                    connection.closeFuture.cascade(to: closed)
                    tasks.addTask {
                        await withTaskCancellationHandler {
                            try? await closed.futureResult.get()
                        } onCancel: {
                            closed.succeed()
                        }
                    }
                    tasks.addTask {
                        while true {
                            try await Task.sleep(nanoseconds: interval)
                            try await self.heartbeat(on: connection)
                        }
                    }
                    try await tasks.next()
                    tasks.cancelAll()
                }
            }
        } catch is CancellationError {
            return
        }
    }

    func heartbeat(on connection: RedisConnection) async throws {
        let now = Self.nowMillis()
        let ttl = settings.presenceTTL.nanoseconds / 1_000_000
        try await connection.send(["ZADD", nodesKey, String(now + ttl), member])
        try await connection.send(["ZREMRANGEBYSCORE", nodesKey, "-inf", String(now)])
        try await connection.send(["PEXPIRE", numberKey, ttlMillis])
        for topic in hub.subscriptionsByTopic().keys {
            try await connection.send(["PEXPIRE", presenceKey(topic, node: settings.node), ttlMillis])
        }
    }

    /// On a graceful stop: the node, its number and its presence go at once, not at expiry.
    func goodbye(on connection: RedisConnection) async {
        _ = try? await connection.send(["ZREM", nodesKey, member])
        _ = try? await connection.send(["DEL", numberKey])
        for topic in hub.subscriptionsByTopic().keys {
            _ = try? await connection.send(["DEL", presenceKey(topic, node: settings.node)])
        }
    }

    // MARK: From Redis

    func received(_ push: [RESPValue]) {
        let kind = push.first?.string ?? ""
        if kind == "pmessage", push.count == 4, let channel = push[2].string, let payload = push[3].bytes {
            let prefix = "\(settings.prefix):topic:"
            if channel.hasPrefix(prefix), payload.readableBytesView.first == UInt8(ascii: "H") {
                // Recorded in the shared history: delivered here too when this node published it.
                guard let (offset, epoch, message) = Self.decodeRecorded(payload) else {
                    logger.warning("cluster: an unreadable recorded publish", metadata: ["channel": .string(channel)])
                    return
                }
                recordedArrived(message, offset: offset, epoch: epoch, on: String(channel.dropFirst(prefix.count)))
                metrics.arrived()
                return
            }
            if channel.hasPrefix(prefix), let (origin, code, reason) = ClusterWire.decodeClose(payload) {
                guard origin != settings.nodeNumber else { return }
                hub.closeSubscribersLocally(of: String(channel.dropFirst(prefix.count)), code: code, reason: reason)
                return
            }
            guard channel.hasPrefix(prefix), let (origin, message) = ClusterWire.decodePublish(payload) else {
                logger.warning("cluster: an unreadable publish", metadata: ["channel": .string(channel)])
                return
            }
            guard origin != settings.nodeNumber else { return }  // delivered here when published
            hub.publishLocally(message, to: String(channel.dropFirst(prefix.count)))
            metrics.arrived()
        } else if kind == "message", push.count == 3, let payload = push[2].bytes {
            guard let command = ClusterWire.Command.decode(payload) else {
                logger.warning("cluster: an unreadable command on this node's channel")
                return
            }
            handle(command)
        }
    }

    func handle(_ command: ClusterWire.Command) {
        switch command.op {
        case .request:
            guard let id = command.request, let from = command.from, let method = command.method, let uri = command.uri,
                let body = ClusterWire.bytes(base64: command.body)
            else { return }
            guard let handler = requestHandler.withLockedValue({ $0 }) else { return }
            handler(ForwardedRequest(method: method, uri: uri, body: body), loop).whenSuccess { [weak self] response in
                guard let self, let connection = self.connection else { return }
                var answer = ClusterWire.Command(op: .response)
                answer.request = id
                answer.status = response.status
                answer.headers = response.headers.map { [$0.0, $0.1] }
                answer.body = ClusterWire.base64(response.body)
                connection.sendWithoutWaiting([
                    ByteBuffer(string: "PUBLISH"), ByteBuffer(string: self.nodeChannel(from)), answer.encoded(),
                ])
            }
        case .response:
            guard let id = command.request, let entry = state.withLockedValue({ $0.pending.removeValue(forKey: id) })
            else { return }
            entry.timer.cancel()
            let headers = (command.headers ?? []).compactMap { $0.count == 2 ? ($0[0], $0[1]) : nil }
            entry.promise.succeed(
                ForwardedResponse(
                    status: command.status ?? 502,
                    headers: headers,
                    body: ClusterWire.bytes(base64: command.body) ?? []
                )
            )
        case .send:
            guard let id = command.connection, let bytes = ClusterWire.bytes(base64: command.body),
                let entry = sessions.entry(id)
            else { return }
            let message = WebSocketMessage(
                kind: command.kind == "text" ? .text : .binary,
                data: ByteBuffer(bytes: bytes)
            )
            _ = sessions.send(message, to: entry)
        case .close:
            guard let id = command.connection, let entry = sessions.entry(id) else { return }
            let code =
                command.code.flatMap { WebSocketErrorCode.isValidOnWire($0) ? WebSocketErrorCode(code: $0) : nil }
                ?? .normalClosure
            _ = sessions.close(entry, code: code, reason: command.reason ?? "")
        }
    }
}

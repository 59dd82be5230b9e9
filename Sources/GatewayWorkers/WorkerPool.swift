import GatewayCore
import GatewayHub
import GatewayMetrics
import GatewayWebSocket
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import WorkerProtocol

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A worker route: its instances (started and supervised here, or external), the links to them,
/// and the client connections pinned to each (least connections first).
///
/// As a `Service` it keeps every instance running and linked, reconnecting with backoff and
/// jitter; as a `RouteService` it decides upgrades and owns the connections' routing.
public final class WorkerPool: RouteService, Service, @unchecked Sendable {
    /// Counters of the pool, for logs and tests.
    public struct Statistics: Sendable, Equatable {
        public var liveLinks = 0
        public var connections = 0
        public var waitingConnections = 0
        /// Messages sent to an instance that died before acknowledging them.
        public var lostMessages = 0
        public var linkErrors = 0
        public var sendQueueOverflows = 0
        public var restarts = 0
    }

    private struct State {
        var links: [UInt64: WorkerLink] = [:]
        var load: [UInt64: Int] = [:]
        var connections: [UInt64: WorkerConnection] = [:]
        /// Connection → the link it is open on.
        var assignment: [UInt64: UInt64] = [:]
        var waiting: [UInt64: WorkerConnection] = [:]
        var statistics = Statistics()
        var shuttingDown = false
        /// Replaced by a reload: stops once its last connection is gone.
        var retiring = false
    }

    public let route: RouteConfiguration
    private let settings: WorkerSettings
    private let hub: Hub
    private let metrics: WorkerMetrics
    private let group: any EventLoopGroup
    private let logger: Logger
    private let instances: [WorkerInstance]
    private let state = NIOLockedValueBox(State())
    /// Tells `run` to stop (a retired pool whose last connection closed).
    private let stopSignal = AsyncStream<Void>.makeStream()
    private let nextLinkID = NIOLockedValueBox<UInt64>(0)
    private let maxFrameBytes: Int
    /// Connections on other gateways of a cluster, for a worker's send and close.
    private let remote: (any RemoteConnections)?

    public init(
        route: RouteConfiguration,
        hub: Hub,
        group: any EventLoopGroup,
        logger: Logger,
        remote: (any RemoteConnections)? = nil
    ) throws {
        self.remote = remote
        guard let settings = route.worker else { preconditionFailure("a worker pool needs worker settings") }
        self.route = route
        self.settings = settings
        self.hub = hub
        self.group = group
        var logger = logger
        logger[metadataKey: "route"] = .string(route.name)
        self.logger = logger
        self.maxFrameBytes = max(route.limits.maxMessageBytes + 64, 1 << 16)
        let metrics = WorkerMetrics(route: route.name)
        self.metrics = metrics
        switch settings.source {
        case .external(let socket):
            instances = [WorkerInstance(name: "\(route.name)", socketPath: socket, process: nil)]
        case .supervised(let command, let arguments, let environment, let count):
            let directory = try WorkerInstance.socketDirectory(settings.socketDirectory)
            instances = (0..<count).map { index in
                let name = "\(route.name)-\(index)"
                let path = "\(directory)/\(name).sock"
                return WorkerInstance(
                    name: name,
                    socketPath: path,
                    process: WorkerProcess(
                        name: name,
                        command: command,
                        arguments: arguments,
                        environment: environment,
                        socketPath: path,
                        stopTimeout: settings.stopTimeout,
                        group: group,
                        logger: logger,
                        metrics: metrics
                    )
                )
            }
        }
    }

    public var statistics: Statistics {
        state.withLockedValue { state in
            var statistics = state.statistics
            statistics.liveLinks = state.links.count
            statistics.connections = state.connections.count
            statistics.waitingConnections = state.waiting.count
            statistics.restarts = instances.reduce(0) { $0 + ($1.process?.restarts ?? 0) }
            return statistics
        }
    }

    /// How many instances the pool has (supervised, or the one external socket).
    public var instanceCount: Int { instances.count }

    public var isReady: Bool { state.withLockedValue { !$0.links.isEmpty } }

    // MARK: Service

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            let loops = Array(self.group.makeIterator())
            for (index, instance) in instances.enumerated() {
                if let process = instance.process {
                    group.addTask { await process.run() }
                }
                // Instances' links spread over the loops, one loop each in turn.
                let loop = loops[index % loops.count]
                group.addTask { await self.keepLinked(instance, on: loop) }
            }
            group.addTask {
                // Until the gateway stops, or a reload retires the pool and its last
                // connection has closed.
                await withTaskGroup(of: Void.self) { waiters in
                    waiters.addTask { try? await gracefulShutdown() }
                    waiters.addTask { for await _ in self.stopSignal.stream { return } }
                    await waiters.next()
                    waiters.cancelAll()
                }
                await self.shutDown()
            }
        }
    }

    /// Takes the pool out of service: a reload has replaced or removed its route. New
    /// connections no longer come here; the pool keeps serving the ones it has and stops its
    /// instances once the last of them has closed (at once when it has none).
    public func retire() {
        let idle = state.withLockedValue { state in
            state.retiring = true
            return state.connections.isEmpty
        }
        logger.info("worker pool retired", metadata: ["connections": .stringConvertible(statistics.connections)])
        if idle { stopSignal.continuation.yield() }
    }

    private func shutDown() async {
        logger.debug("worker pool stopping")
        let links = state.withLockedValue { state in
            state.shuttingDown = true
            return Array(state.links.values)
        }
        // Tell the workers: their links close (each worker sees every connection end).
        for link in links { try? await link.channel.close() }
        logger.debug("worker links closed", metadata: ["links": .stringConvertible(links.count)])
        for instance in instances { await instance.process?.stop() }
        logger.debug("worker pool stopped")
    }

    private var shuttingDown: Bool { state.withLockedValue { $0.shuttingDown } }

    /// Connects to an instance, again and again while the pool runs.
    private func keepLinked(_ instance: WorkerInstance, on loop: any EventLoop) async {
        var backoff = Backoff()
        while !shuttingDown {
            do {
                let channel = try await connect(instance, on: loop)
                backoff.reset()
                try? await channel.closeFuture.get()
            } catch {
                logger.debug(
                    "worker not reachable",
                    metadata: ["instance": .string(instance.name), "error": .string("\(error)")]
                )
            }
            if shuttingDown { return }
            try? await Task.sleep(nanoseconds: UInt64(backoff.next().nanoseconds))
        }
    }

    private func connect(_ instance: WorkerInstance, on loop: any EventLoop) async throws -> any Channel {
        let linkID = nextLinkID.withLockedValue {
            $0 += 1
            return $0
        }
        let maxFrameBytes = self.maxFrameBytes
        let logger = self.logger
        // The pipeline stays empty until the peer is trusted; then the link handler is all of it.
        let channel = try await ClientBootstrap(group: loop)
            .connectTimeout(.seconds(2))
            .connect(unixDomainSocketPath: instance.socketPath).get()
        // Trust the socket only if its owner is an allowed user.
        let uid = try await PeerCredentials.uid(of: channel).get()
        let allowed = settings.allowedUIDs.isEmpty ? [PeerCredentials.ownUID] : settings.allowedUIDs.map { UInt32($0) }
        guard allowed.contains(uid) else {
            logger.error(
                "worker socket owned by a user that is not allowed",
                metadata: ["instance": .string(instance.name), "uid": .stringConvertible(uid)]
            )
            try? await channel.close()
            throw ChannelError.operationUnsupported
        }
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(
                WorkerLinkHandler(
                    instance: instance.name,
                    linkID: linkID,
                    maxFrameBytes: maxFrameBytes,
                    helloTimeout: .seconds(5),
                    pool: self,
                    logger: logger
                )
            )
            channel.pipeline.fireChannelActive()
        }.get()
        return channel
    }

    // MARK: RouteService

    public func prepare(
        _ request: UpgradeRequest,
        eventLoop: any EventLoop,
        completion: @escaping (UpgradeVerdict) -> Void
    ) {
        var fields: [(String, String)] = [(":route", route.name)]
        let path = RouteTable.path(of: request.target)
        fields.append((":path", path))
        if let question = request.target.firstIndex(of: "?") {
            fields.append((":query", String(request.target[request.target.index(after: question)...])))
        }
        fields.append((":peer", request.peer))
        if let subprotocol = request.subprotocol { fields.append((":subprotocol", subprotocol)) }
        if let tls = request.tlsVersion { fields.append((":tls", tls)) }
        if let claims = request.claims { fields.append((":claims", claims)) }
        if let subject = request.subject { fields.append((":sub", subject)) }
        if let clientSubject = request.clientSubject { fields.append((":client_subject", clientSubject)) }
        for (name, value) in request.headers where settings.forwardHeaders.contains(name) {
            fields.append((name, value))
        }
        let connection = WorkerConnection(id: request.connectionID, eventLoop: eventLoop, fields: fields, pool: self)
        state.withLockedValue { $0.connections[connection.id] = connection }
        if settings.authorize {
            connection.awaitVerdict(timeout: settings.authorizeTimeout, completion: completion)
            attach(connection)
        } else {
            completion(.accept(connection))
        }
    }

    // MARK: Routing

    /// Pins a connection to the live instance with the fewest connections, or lets it wait.
    func attach(_ connection: WorkerConnection) {
        let link: WorkerLink? = state.withLockedValue { state in
            guard state.connections[connection.id] != nil else { return nil }
            // Fewest connections first; among equals, the instance whose link is on this
            // connection's loop, so its messages need no hop between threads.
            func rank(_ link: WorkerLink) -> (Int, Int, UInt64) {
                (state.load[link.id] ?? 0, link.channel.eventLoop === connection.eventLoop ? 0 : 1, link.id)
            }
            guard let best = state.links.values.min(by: { rank($0) < rank($1) }) else {
                state.waiting[connection.id] = connection
                return nil
            }
            state.waiting[connection.id] = nil
            state.assignment[connection.id] = best.id
            state.load[best.id, default: 0] += 1
            return best
        }
        if let link {
            connection.attach(to: link)
        } else {
            connection.waitForInstance(timeout: settings.authorize ? settings.authorizeTimeout : settings.resumeTimeout)
        }
    }

    func detach(_ connection: WorkerConnection) {
        let lastOfRetired = state.withLockedValue { state -> Bool in
            guard state.connections.removeValue(forKey: connection.id) != nil else { return false }
            state.waiting[connection.id] = nil
            if let link = state.assignment.removeValue(forKey: connection.id) {
                state.load[link, default: 1] -= 1
            }
            return state.retiring && state.connections.isEmpty
        }
        hub.unsubscribeAll(connection.id)
        if lastOfRetired { stopSignal.continuation.yield() }
    }

    func linkReady(_ link: WorkerLink) {
        metrics.linked()
        let waiting: [WorkerConnection] = state.withLockedValue { state in
            state.links[link.id] = link
            state.load[link.id] = 0
            let waiting = Array(state.waiting.values)
            return waiting
        }
        for connection in waiting { attach(connection) }
    }

    func linkLost(_ link: WorkerLink) {
        let (wasReady, orphans): (Bool, [WorkerConnection]) = state.withLockedValue { state in
            let wasReady = state.links.removeValue(forKey: link.id) != nil
            state.load[link.id] = nil
            var orphans: [WorkerConnection] = []
            for (connectionID, linkID) in state.assignment where linkID == link.id {
                state.assignment[connectionID] = nil
                if let connection = state.connections[connectionID] { orphans.append(connection) }
            }
            return (wasReady, orphans)
        }
        if wasReady { metrics.unlinked() }
        if shuttingDown { return }
        logger.warning(
            "worker link lost",
            metadata: ["instance": .string(link.instance), "connections": .stringConvertible(orphans.count)]
        )
        for connection in orphans {
            connection.orphan(resumeTimeout: settings.resumeTimeout)
            attach(connection)
        }
    }

    /// A frame from a linked worker. Frames about connections that are not (or no longer) open
    /// on that link are ignored: they raced with a close.
    func handle(_ frame: WorkerFrame, from link: WorkerLink) throws(WorkerProtocolError) {
        func connection(_ id: UInt64) -> WorkerConnection? {
            state.withLockedValue { state in
                state.assignment[id] == link.id ? state.connections[id] : nil
            }
        }
        switch frame {
        case .send(let id, let kind, let payload):
            let message = WebSocketMessage(kind: kind == .text ? .text : .binary, data: payload)
            if let connection = connection(id) {
                connection.deliver(message)
            } else if let remote, remote.isRemote(id) {
                remote.send(message, to: id)
            }
        case .close(let id, let code, let reason):
            if let connection = connection(id) {
                connection.closeRequested(code: code, reason: reason)
            } else if let remote, remote.isRemote(id) {
                remote.close(id, code: CloseCode.isValidOnWire(code) ? code : CloseCode.normal, reason: reason)
            }
        case .accept(let id):
            connection(id)?.verdictArrived(accepted: true, status: 101, reason: "")
        case .reject(let id, let status, let reason):
            connection(id)?.verdictArrived(accepted: false, status: status, reason: reason)
        case .subscribe(let id, let topic):
            if let connection = connection(id) { hub.subscribe(connection, to: topic) }
        case .unsubscribe(let id, let topic):
            hub.unsubscribe(id, from: topic)
        case .publish(let topic, let kind, let payload):
            hub.publish(WebSocketMessage(kind: kind == .text ? .text : .binary, data: payload), to: topic)
        case .credit(let id, let messages, let bytes):
            connection(id)?.creditReturned(messages: messages, bytes: bytes, from: link)
        case .hello, .helloAck, .open, .message, .closed:
            throw WorkerProtocolError(.unexpectedFrame, "a worker does not send \(frame.type) frames")
        }
    }

    /// Messages sent to an instance that died before acknowledging them (at-most-once).
    func countLost(_ messages: Int, connection: UInt64) {
        guard messages > 0 else { return }
        state.withLockedValue { $0.statistics.lostMessages += messages }
        logger.warning(
            "messages lost with a dead worker instance",
            metadata: ["connection": .stringConvertible(connection), "messages": .stringConvertible(messages)]
        )
    }

    func countLinkError() {
        state.withLockedValue { $0.statistics.linkErrors += 1 }
        metrics.linkFailed()
    }
    func countOverflow() { state.withLockedValue { $0.statistics.sendQueueOverflows += 1 } }
}

/// One instance of a pool: its socket, and its process when the gateway supervises it.
struct WorkerInstance: Sendable {
    var name: String
    var socketPath: String
    var process: WorkerProcess?

    /// The directory for supervised workers' sockets: the configured one, or a fresh private
    /// (0700) directory under the temporary directory.
    static func socketDirectory(_ configured: String) throws -> String {
        if !configured.isEmpty {
            mkdir(configured, 0o700)
            return configured
        }
        let base = ProcessEnvironment.value("TMPDIR") ?? "/tmp"
        var template = Array("\(base)/wssgate-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw WorkerSetupError(message: "cannot make a socket directory under \(base)")
        }
        return String(cString: made)
    }
}

struct WorkerSetupError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

enum ProcessEnvironment {
    static func value(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}

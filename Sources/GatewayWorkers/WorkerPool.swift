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
/// and which instance each client connection is pinned to (least connections first).
///
/// As a `Service` it keeps every instance running and linked — one link per event loop to each
/// instance, reconnecting with backoff and jitter; as a `RouteService` it decides upgrades and
/// assigns connections to links. It is not on the reply path: a link owns the connections open
/// on it (`WorkerLink`), and its handler carries out the worker's frames itself.
public final class WorkerPool: RouteService, Service, Sendable {
    /// Counters of the pool, for logs and tests.
    public struct Statistics: Sendable, Equatable {
        /// Instances with at least one live link.
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
        /// Live links, by id.
        var links: [UInt64: WorkerLink] = [:]
        /// Per instance: the connections pinned to it.
        var load: [Int]
        var connections: [UInt64: WorkerConnection] = [:]
        /// Connection → the link it is open on.
        var assignment: [UInt64: WorkerLink] = [:]
        var waiting: [UInt64: WorkerConnection] = [:]
        var statistics = Statistics()
        var shuttingDown = false
        /// Replaced by a reload: stops once its last connection is gone.
        var retiring = false

        func linkCount(of instance: Int) -> Int {
            links.values.reduce(0) { $0 + ($1.instance == instance ? 1 : 0) }
        }
    }

    public let route: RouteConfiguration
    private let settings: WorkerSettings
    let hub: Hub
    private let metrics: WorkerMetrics
    private let group: any EventLoopGroup
    private let logger: Logger
    private let instances: [WorkerInstance]
    /// The socket directory made for supervised instances (removed when the pool stops).
    private let madeDirectory: String?
    private let state: NIOLockedValueBox<State>
    /// Tells `run` to stop (a retired pool whose last connection closed).
    private let stopSignal = AsyncStream<Void>.makeStream()
    private let nextLinkID = LinkIDs()
    private let maxFrameBytes: Int
    /// Connections on other gateways of a cluster, for a worker's send and close.
    let remote: (any RemoteConnections)?

    public init(
        route: RouteConfiguration,
        settings: WorkerSettings,
        hub: Hub,
        group: any EventLoopGroup,
        logger: Logger,
        remote: (any RemoteConnections)? = nil
    ) throws {
        self.remote = remote
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
            madeDirectory = nil
        case .supervised(let command, let arguments, let environment, let count):
            let (directory, made) = try WorkerInstance.socketDirectory(settings.socketDirectory)
            madeDirectory = made ? directory : nil
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
        state = NIOLockedValueBox(State(load: Array(repeating: 0, count: instances.count)))
    }

    public var statistics: Statistics {
        state.withLockedValue { state in
            var statistics = state.statistics
            statistics.liveLinks = Set(state.links.values.map(\.instance)).count
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
                // A link per event loop: every connection finds its instance's link on its
                // own loop, and the worker's replies to it need no thread hop.
                for loop in loops {
                    group.addTask { await self.keepLinked(index, on: loop) }
                }
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
        if let madeDirectory {
            for instance in instances { unlink(instance.socketPath) }
            rmdir(madeDirectory)
        }
        logger.debug("worker pool stopped")
    }

    private var shuttingDown: Bool { state.withLockedValue { $0.shuttingDown } }

    /// Connects to an instance from `loop`, again and again while the pool runs. The backoff
    /// restarts only after a link that worked: one that a worker keeps breaking (or that never
    /// says hello) is retried less and less often, up to the backoff's ceiling.
    private func keepLinked(_ index: Int, on loop: any EventLoop) async {
        let instance = instances[index]
        var backoff = Backoff()
        while !shuttingDown {
            do {
                let outcome = try await connect(index, on: loop)
                if try await outcome.get() == .ended { backoff.reset() }
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

    /// Opens a link; its future says how the link ended.
    private func connect(
        _ index: Int,
        on loop: any EventLoop
    ) async throws -> EventLoopFuture<WorkerLinkHandler.Outcome> {
        let instance = instances[index]
        let linkID = nextLinkID.next()
        let maxFrameBytes = self.maxFrameBytes
        let logger = self.logger
        // The pipeline stays empty until the peer is trusted; then the link handler is all of it.
        let channel = try await ClientBootstrap(group: loop)
            .connectTimeout(.seconds(2))
            .connect(unixDomainSocketPath: instance.socketPath).get()
        // Trust the socket only if its owner is an allowed user.
        let uid = try await PeerCredentials.uid(of: channel).get()
        let allowed =
            settings.allowedUIDs.isEmpty ? [PeerCredentials.ownUID] : settings.allowedUIDs.map { UInt32($0) }
        guard allowed.contains(uid) else {
            logger.error(
                "worker socket owned by a user that is not allowed",
                metadata: ["instance": .string(instance.name), "uid": .stringConvertible(uid)]
            )
            try? await channel.close()
            throw ChannelError.operationUnsupported
        }
        let outcome = channel.eventLoop.makePromise(of: WorkerLinkHandler.Outcome.self)
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(
                WorkerLinkHandler(
                    instance: index,
                    instanceName: instance.name,
                    linkID: linkID,
                    maxFrameBytes: maxFrameBytes,
                    helloTimeout: .seconds(5),
                    pool: self,
                    logger: logger,
                    outcome: outcome
                )
            )
            channel.pipeline.fireChannelActive()
        }.get()
        return outcome.futureResult
    }

    // MARK: RouteService

    public func prepare(
        _ request: UpgradeRequest,
        eventLoop: any EventLoop,
        completion: @escaping (UpgradeVerdict) -> Void
    ) {
        let connection = WorkerConnection(
            id: request.connectionID,
            eventLoop: eventLoop,
            fields: OpenFields.make(for: request, route: route.name, forwardHeaders: settings.forwardHeaders),
            verdictRequired: settings.authorize,
            pool: self
        )
        state.withLockedValue { $0.connections[connection.id] = connection }
        if settings.authorize {
            connection.awaitVerdict(timeout: settings.authorizeTimeout, completion: completion)
            attach(connection)
        } else {
            completion(.accept(connection))
        }
    }

    // MARK: Routing

    /// Pins a connection to the live instance with the fewest connections, on that instance's
    /// link on the connection's own loop (any of its links when it has none there yet), or
    /// lets the connection wait for one.
    func attach(_ connection: WorkerConnection) {
        let link: WorkerLink? = state.withLockedValue { state in
            guard state.connections[connection.id] != nil else { return nil }
            var best: (rank: (Int, Int), link: WorkerLink)?
            for link in state.links.values {
                let rank = (state.load[link.instance], link.eventLoop === connection.eventLoop ? 0 : 1)
                if best == nil || rank < best!.rank || (rank == best!.rank && link.id < best!.link.id) {
                    best = (rank, link)
                }
            }
            guard let best else {
                state.waiting[connection.id] = connection
                return nil
            }
            state.waiting[connection.id] = nil
            if let previous = state.assignment.updateValue(best.link, forKey: connection.id) {
                state.load[previous.instance] -= 1
            }
            state.load[best.link.instance] += 1
            return best.link
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
                state.load[link.instance] -= 1
            }
            return state.retiring && state.connections.isEmpty
        }
        hub.unsubscribeAll(connection.id)
        if lastOfRetired { stopSignal.continuation.yield() }
    }

    /// A link finished its hello (on its loop).
    func linkReady(_ link: WorkerLink) {
        let (firstOfInstance, waiting): (Bool, [WorkerConnection]) = state.withLockedValue { state in
            let first = state.linkCount(of: link.instance) == 0
            state.links[link.id] = link
            return (first, Array(state.waiting.values))
        }
        if firstOfInstance {
            metrics.linked()
            logger.info(
                "worker linked",
                metadata: [
                    "instance": .string(link.instanceName), "credit": .stringConvertible(link.initialCredit),
                    "frame_limit": .stringConvertible(link.maxFrameBytes),
                ]
            )
        }
        for connection in waiting { attach(connection) }
    }

    /// A link is gone (on its loop): its connections wait for another one.
    func linkLost(_ link: WorkerLink) {
        let orphans = link.removeAll()
        let lastOfInstance: Bool = state.withLockedValue { state in
            guard state.links.removeValue(forKey: link.id) != nil else { return false }
            for connection in orphans where state.assignment[connection.id] === link {
                state.assignment[connection.id] = nil
                state.load[link.instance] -= 1
            }
            return state.linkCount(of: link.instance) == 0
        }
        if lastOfInstance { metrics.unlinked() }
        if shuttingDown { return }
        logger.warning(
            "worker link lost",
            metadata: ["instance": .string(link.instanceName), "connections": .stringConvertible(orphans.count)]
        )
        for connection in orphans {
            connection.orphan(from: link, resumeTimeout: settings.resumeTimeout)
        }
    }

    /// `link` was gone before the connection's `open` reached it: like an orphan of it.
    func reattach(_ connection: WorkerConnection, after link: WorkerLink) {
        state.withLockedValue { state in
            if state.assignment[connection.id] === link {
                state.assignment[connection.id] = nil
                state.load[link.instance] -= 1
            }
        }
        connection.orphan(from: link, resumeTimeout: settings.resumeTimeout)
    }

    /// A connection of this pool, whichever link it is open on (hub commands only).
    func connection(_ id: UInt64) -> WorkerConnection? {
        state.withLockedValue { $0.connections[id] }
    }

    /// Messages sent to an instance that died before acknowledging them (at-most-once).
    func countLost(_ messages: Int, connection: UInt64) {
        guard messages > 0 else { return }
        state.withLockedValue { $0.statistics.lostMessages += messages }
        metrics.lost(messages)
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
    func countDroppedBeforeOpen() {
        countOverflow()
        metrics.droppedBeforeOpen()
    }
}

/// Link ids, unique within a pool.
final class LinkIDs: Sendable {
    private let value = NIOLockedValueBox<UInt64>(0)
    func next() -> UInt64 {
        value.withLockedValue {
            $0 += 1
            return $0
        }
    }
}

/// One instance of a pool: its socket, and its process when the gateway supervises it.
struct WorkerInstance: Sendable {
    var name: String
    var socketPath: String
    var process: WorkerProcess?

    /// The directory for supervised workers' sockets: the configured one, or a fresh private
    /// (0700) directory under the temporary directory.
    static func socketDirectory(_ configured: String) throws -> (path: String, made: Bool) {
        if !configured.isEmpty {
            mkdir(configured, 0o700)
            return (configured, false)
        }
        let base = ProcessEnvironment.value("TMPDIR") ?? "/tmp"
        var template = Array("\(base)/wssgate-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw WorkerSetupError(message: "cannot make a socket directory under \(base)")
        }
        return (String(cString: made), true)
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

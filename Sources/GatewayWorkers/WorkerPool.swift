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
        /// Supervised instances wanted now (running, starting or restarting).
        public var awakeInstances = 0
    }

    /// What the pool's lock guards: the placement, and the objects its ids stand for.
    struct Locked {
        var placement: WorkerPlacement
        /// Every instance the pool has had, by index.
        var instances: [WorkerInstance]
        var links: [UInt64: WorkerLink] = [:]
        var connections: [UInt64: WorkerConnection] = [:]

        func links(_ ids: [UInt64]) -> [WorkerLink] { ids.compactMap { links[$0] } }
        func connections(_ ids: [UInt64]) -> [WorkerConnection] { ids.compactMap { connections[$0] } }
    }

    public let route: RouteConfiguration
    let settings: WorkerSettings
    let hub: Hub
    let metrics: WorkerMetrics
    let group: any EventLoopGroup
    let logger: Logger
    /// Where supervised instances' sockets are (nil for an external worker).
    let socketDirectory: String?
    /// The socket directory made for supervised instances (removed when the pool stops).
    let madeDirectory: String?
    let state: NIOLockedValueBox<Locked>
    /// Tells `run` to stop (a retired pool whose last connection closed).
    let stopSignal = AsyncStream<Void>.makeStream()
    /// What `run` starts: instances (at start and by deploys) and deploys.
    let jobs = AsyncStream<Job>.makeStream()

    enum Job {
        case instance(Int)
        case deploy(from: Range<Int>, to: Range<Int>, command: WorkerProgram)
    }
    let nextLinkID = LinkIDs()
    /// Opens at the pool's first link: what the gateway's start and a reload wait for.
    let linked: Latch
    let maxFrameBytes: Int
    /// Connections on other gateways of a cluster, for a worker's send and close.
    let remote: (any RemoteConnections)?
    /// The gateway's connections, for a worker's `identify` (a connection's user and tags).
    let directory: SessionDirectory?
    /// The route's auto-responses, if it has any.
    let autoResponder: AutoResponder?
    /// Largest attachment a worker may set.
    var attachmentLimit: Int { settings.attachmentBytes }

    public init(
        route: RouteConfiguration,
        settings: WorkerSettings,
        hub: Hub,
        group: any EventLoopGroup,
        logger: Logger,
        remote: (any RemoteConnections)? = nil,
        directory: SessionDirectory? = nil
    ) throws {
        self.remote = remote
        self.directory = directory
        self.autoResponder = AutoResponder(settings.autoResponses)
        self.route = route
        self.settings = settings
        self.hub = hub
        self.group = group
        var logger = logger
        logger[metadataKey: "route"] = .string(route.name)
        self.logger = logger
        self.maxFrameBytes = max(route.limits.maxMessageBytes + 64, 1 << 16)
        self.metrics = WorkerMetrics(route: route.name)
        self.linked = Latch(open: settings.alwaysRunning == 0)
        let rules = WorkerPlacement.Rules(hibernates: settings.hibernates, alwaysRunning: settings.alwaysRunning)
        var placement = WorkerPlacement(source: settings.source, rules: rules)
        var instances: [WorkerInstance] = []
        switch settings.source {
        case .external(let socket):
            instances = [WorkerInstance(name: "\(route.name)", socketPath: socket, process: nil)]
            placement.putInForce(placement.addGeneration(count: 1, awake: 1, now: .now()), source: settings.source)
            socketDirectory = nil
            madeDirectory = nil
        case .supervised:
            let (directory, made) = try WorkerInstance.socketDirectory(settings.socketDirectory)
            socketDirectory = directory
            madeDirectory = made ? directory : nil
        }
        state = NIOLockedValueBox(Locked(placement: placement, instances: instances))
        if case .supervised(let command, let arguments, let environment, let count) = settings.source {
            let made = makeGeneration(
                WorkerProgram(command: command, arguments: arguments, environment: environment),
                count: count,
                awake: settings.alwaysRunning
            )
            state.withLockedValue { $0.placement.putInForce(made, source: settings.source) }
        }
        for index in state.withLockedValue({ $0.placement.pool.current }) { jobs.continuation.yield(.instance(index)) }
    }

    /// Adds `count` supervised instances running `command`, the first `awake` of them wanted.
    func makeGeneration(_ command: WorkerProgram, count: Int, awake: Int) -> Range<Int> {
        state.withLockedValue { state in
            let made = state.placement.addGeneration(count: count, awake: awake, now: .now())
            for index in made {
                let name = "\(route.name)-\(index)"
                let path = "\(socketDirectory ?? "")/\(name).sock"
                let wanted = index - made.lowerBound < awake
                state.instances.append(
                    WorkerInstance(
                        name: name,
                        socketPath: path,
                        process: WorkerProcess(
                            name: name,
                            command: command.command,
                            arguments: command.arguments,
                            environment: command.environment,
                            socketPath: path,
                            stopTimeout: settings.stopTimeout,
                            group: group,
                            logger: logger,
                            metrics: metrics,
                            wanted: wanted
                        )
                    )
                )
            }
            return made
        }
    }

    /// The instance at `index` (of any generation).
    func instance(_ index: Int) -> WorkerInstance {
        state.withLockedValue { $0.instances[index] }
    }

    public var statistics: Statistics {
        state.withLockedValue { state in
            let pool = state.placement.pool
            var statistics = Statistics()
            statistics.lostMessages = pool.counters.lostMessages
            statistics.linkErrors = pool.counters.linkErrors
            statistics.sendQueueOverflows = pool.counters.sendQueueOverflows
            statistics.liveLinks = Set(pool.links.values.map(\.instance)).count
            statistics.connections = pool.connections.count
            statistics.waitingConnections = pool.waiting.count
            statistics.restarts = state.instances.reduce(0) { $0 + ($1.process?.restarts ?? 0) }
            statistics.awakeInstances = pool.current.filter { pool.awake[$0] }.count
            return statistics
        }
    }

    /// How many instances the pool has in force (supervised, or the one external socket).
    public var instanceCount: Int { state.withLockedValue { $0.placement.pool.current.count } }

    /// Ready with a live link, or at once when the route may run no instance at all
    /// (`min_instances: 0`): it takes connections asleep.
    public var isReady: Bool {
        settings.alwaysRunning == 0 || state.withLockedValue { !$0.placement.pool.links.isEmpty }
    }

    public func whenReady(on eventLoop: any EventLoop) -> EventLoopFuture<Void> { linked.whenOpen(on: eventLoop) }

    /// The processes of supervised instances running now, by instance name (admin API, tests).
    public var runningProcesses: [(instance: String, pid: Int32)] {
        state.withLockedValue { $0.instances }.compactMap { instance in
            instance.process?.pid.map { (instance.name, $0) }
        }
    }

    // MARK: Service

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            let loops = Array(self.group.makeIterator())
            if settings.hibernates {
                group.addTask { await self.watchIdleInstances() }
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
            // Until `shutDown` ends the stream.
            for await job in jobs.stream {
                switch job {
                case .instance(let index):
                    if let process = instance(index).process {
                        group.addTask { await process.run() }
                    }
                    // A link per event loop: every connection finds its instance's link on its
                    // own loop, and the worker's replies to it need no thread hop.
                    for loop in loops {
                        group.addTask { await self.keepLinked(index, on: loop) }
                    }
                case .deploy(let old, let new, let command):
                    group.addTask { await self.carryOut(from: old, to: new, command: command) }
                }
            }
        }
    }

    /// Takes the pool out of service: a reload has replaced or removed its route. New
    /// connections no longer come here; the pool keeps serving the ones it has and stops its
    /// instances once the last of them has closed (at once when it has none).
    public func retire() {
        let idle = state.withLockedValue { $0.placement.retire() }
        logger.info("worker pool retired", metadata: ["connections": .stringConvertible(statistics.connections)])
        if idle { stopSignal.continuation.yield() }
    }

    func shutDown() async {
        logger.debug("worker pool stopping")
        let (links, instances) = state.withLockedValue { state in
            (state.links(state.placement.stop()), state.instances)
        }
        jobs.continuation.finish()
        linked.end()
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

    var shuttingDown: Bool { state.withLockedValue { $0.placement.isStopped } }

    /// Whether `keepLinked` of this instance should stop: the pool stops, or a deploy retired it.
    func linkNotWanted(_ index: Int) -> Bool {
        state.withLockedValue { $0.placement.isStopped || $0.placement.pool.retired.contains(index) }
    }

    /// Connects to an instance from `loop`, again and again while the pool runs. The backoff
    /// restarts only after a link that worked: one that a worker keeps breaking (or that never
    /// says hello) is retried less and less often, up to the backoff's ceiling.
    func keepLinked(_ index: Int, on loop: any EventLoop) async {
        let instance = instance(index)
        var backoff = Backoff()
        while !linkNotWanted(index) {
            if let process = instance.process, !process.isWanted {
                // Asleep: no link to try until it is woken (then at once, not after a backoff).
                await process.untilWanted()
                backoff.reset()
                if linkNotWanted(index) { return }
            }
            do {
                let outcome = try await connect(index, on: loop)
                if try await outcome.get() == .ended { backoff.reset() }
            } catch {
                logger.debug(
                    "worker not reachable",
                    metadata: ["instance": .string(instance.name), "error": .string("\(error)")]
                )
            }
            if linkNotWanted(index) { return }
            try? await Task.sleep(nanoseconds: UInt64(backoff.next().nanoseconds))
        }
    }

    /// Opens a link; its future says how the link ended.
    func connect(
        _ index: Int,
        on loop: any EventLoop
    ) async throws -> EventLoopFuture<WorkerLinkHandler.Outcome> {
        let instance = instance(index)
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
            wakeQueueBytes: settings.wakeQueueBytes,
            pool: self
        )
        state.withLockedValue { state in
            state.connections[connection.id] = connection
            state.placement.opened(connection.id)
        }
        if settings.authorize {
            connection.awaitVerdict(timeout: settings.authorizeTimeout, completion: completion)
            attach(connection, wake: true)
        } else {
            completion(.accept(connection))
        }
    }

    // MARK: Routing

    /// Pins a connection to an instance's link, lets it wait for one or leaves it asleep
    /// (`WorkerPlacement.attach`), and tells the connection.
    func attach(_ connection: WorkerConnection, wake: Bool) {
        let (action, link) = state.withLockedValue { state in
            let action = state.placement.attach(
                connection.id,
                loop: ObjectIdentifier(connection.eventLoop),
                wake: wake,
                now: .now()
            )
            if case .link(let id) = action { return (action, state.links[id]) }
            return (action, nil)
        }
        switch action {
        case .link:
            if let link { connection.attach(to: link) }
        case .asleep:
            connection.hibernate()
        case .waiting(let woken):
            if let woken { started(woken) }
            connection.waitForInstance(timeout: settings.authorize ? settings.authorizeTimeout : settings.resumeTimeout)
        case .pinned, .gone:
            break
        }
    }

    /// Starts an instance marked awake.
    func started(_ index: Int) {
        metrics.woke()
        let instance = instance(index)
        logger.info("worker instance woken", metadata: ["instance": .string(instance.name)])
        instance.process?.wake()
    }

    /// A connection's instance let it go (it is being put to sleep, or replaced).
    func released(_ connection: WorkerConnection, from link: WorkerLink) {
        state.withLockedValue { $0.placement.unpinned(connection.id, from: link.id) }
    }

    func detach(_ connection: WorkerConnection) {
        let lastOfRetired = state.withLockedValue { state -> Bool in
            state.connections[connection.id] = nil
            return state.placement.detach(connection.id)
        }
        hub.unsubscribeAll(connection.id)
        if lastOfRetired { stopSignal.continuation.yield() }
    }

    /// A link finished its hello (on its loop).
    func linkReady(_ link: WorkerLink) {
        let (action, waiting) = state.withLockedValue { state in
            let action = state.placement.linkReady(
                .init(id: link.id, instance: link.instance, loop: ObjectIdentifier(link.eventLoop))
            )
            guard case .linked(_, let waiting) = action else { return (action, [WorkerConnection]()) }
            state.links[link.id] = link
            return (action, state.connections(waiting))
        }
        guard case .linked(let firstOfInstance, _) = action else {
            // Replaced by a deploy while it was linking.
            link.channel.close(promise: nil)
            return
        }
        linked.open()
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
        for connection in waiting { attach(connection, wake: true) }
    }

    /// A link is gone (on its loop): its connections wait for another one.
    func linkLost(_ link: WorkerLink) {
        let orphans = link.removeAll()
        let (lost, stopped) = state.withLockedValue { state in
            state.links[link.id] = nil
            let placed = WorkerPlacement.Link(
                id: link.id,
                instance: link.instance,
                loop: ObjectIdentifier(link.eventLoop)
            )
            return (state.placement.linkLost(placed, orphans: orphans.map(\.id)), state.placement.isStopped)
        }
        if lost.lastOfInstance { metrics.unlinked() }
        if stopped { return }
        logger.log(
            level: lost.expected && orphans.isEmpty ? .debug : .warning,
            "worker link lost",
            metadata: ["instance": .string(link.instanceName), "connections": .stringConvertible(orphans.count)]
        )
        for connection in orphans { connection.orphan(from: link) }
    }

    /// `link` was gone before the connection's `open` reached it: like an orphan of it.
    func reattach(_ connection: WorkerConnection, after link: WorkerLink) {
        state.withLockedValue { $0.placement.unpinned(connection.id, from: link.id) }
        connection.orphan(from: link)
    }

    /// A connection of this pool, whichever link it is open on (hub commands only).
    func connection(_ id: UInt64) -> WorkerConnection? {
        state.withLockedValue { $0.connections[id] }
    }

    /// Messages sent to an instance that died before acknowledging them (at-most-once).
    func countLost(_ messages: Int, connection: UInt64) {
        guard messages > 0 else { return }
        state.withLockedValue { $0.placement.count { $0.lostMessages += messages } }
        metrics.lost(messages)
        logger.warning(
            "messages lost with a dead worker instance",
            metadata: ["connection": .stringConvertible(connection), "messages": .stringConvertible(messages)]
        )
    }

    func countLinkError() {
        state.withLockedValue { $0.placement.count { $0.linkErrors += 1 } }
        metrics.linkFailed()
    }
    func countOverflow() { state.withLockedValue { $0.placement.count { $0.sendQueueOverflows += 1 } } }
    func countAutoResponse() { metrics.autoResponded() }
    func countDroppedBeforeOpen() {
        countOverflow()
        metrics.droppedBeforeOpen()
    }
}

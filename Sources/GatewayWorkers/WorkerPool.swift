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
    /// Beats when links come or go and connections leave: what deploys and sleeping wait on.
    let changed = Pulse()
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

    /// How many instances the pool has in force (supervised, or the one external socket).
    public var instanceCount: Int { state.withLockedValue { $0.placement.pool.current.count } }

    /// Ready with a live link, or at once when the route may run no instance at all
    /// (`min_instances: 0`): it takes connections asleep.
    public var isReady: Bool {
        settings.alwaysRunning == 0 || state.withLockedValue { !$0.placement.pool.links.isEmpty }
    }

    public func ready(within timeout: TimeAmount, on eventLoop: any EventLoop) async -> Bool {
        await linked.opens(within: timeout, on: eventLoop)
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
        changed.beat()
    }

    func detach(_ connection: WorkerConnection) {
        let lastOfRetired = state.withLockedValue { state -> Bool in
            state.connections[connection.id] = nil
            return state.placement.detach(connection.id)
        }
        hub.unsubscribeAll(connection.id)
        changed.beat()
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
        changed.beat()
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
        changed.beat()
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
        changed.beat()
        connection.orphan(from: link)
    }

    /// A connection of this pool, whichever link it is open on (hub commands only).
    func connection(_ id: UInt64) -> WorkerConnection? {
        state.withLockedValue { $0.connections[id] }
    }
}

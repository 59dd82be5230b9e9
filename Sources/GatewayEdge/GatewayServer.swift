import GatewayAuth
import GatewayCore
import GatewayMetrics
import GatewayTLS
import GatewayWebSocket
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL
import ServiceLifecycle

/// Binds every listener and serves until a graceful shutdown, then drains: every listener stops
/// accepting at once, `/readyz` → 503, every WebSocket (proxied ones included) closed with 1001
/// within the drain spread, and whatever is left after the drain timeout closed by force.
/// A reload may bind listeners, drain them, or change what a kept one gives new connections.
public final class GatewayServer: Service, Sendable {
    /// A bound listener, with the address it really got (port 0 becomes a real port).
    public struct BoundListener: Sendable {
        public var name: String
        public var address: SocketAddress
        public var tls: Bool
    }

    /// One listening socket, and what its next connections get: a reload replaces `settings`
    /// (certificates, HSTS, the https redirect) without touching the socket.
    final class Listener: Sendable {
        struct Settings: Sendable {
            var configuration: ListenerConfiguration
            var tls: ServerTLS?
        }
        /// Tags this socket's connections in the registry (a name may be bound again elsewhere).
        let serial: UInt64
        let settings: NIOLockedValueBox<Settings>
        let channel: NIOLockedValueBox<(any Channel)?>

        init(serial: UInt64, settings: Settings) {
            self.serial = serial
            self.settings = NIOLockedValueBox(settings)
            self.channel = NIOLockedValueBox(nil)
        }
    }

    public let state: GatewayState
    /// Routes, their services and HTTP limits for new connections; `reload` replaces them.
    public let live: LiveSettings
    let configuration: GatewayConfiguration
    /// Open WebSocket connections, for the admin API.
    public let sessions: SessionDirectory
    public let metrics: GatewayMetrics
    /// Connection limits overall and per client address; a reload updates them.
    public let limiter: ClientLimiter
    /// Listening descriptors passed by systemd and not adopted yet: each is adopted once (a
    /// listener drained by a reload closes it for good).
    let activatedSockets: NIOLockedValueBox<[String: Int32]>
    let hooks: Hooks
    let logger: Logger
    let group: any EventLoopGroup
    let connections = ConnectionRegistry()
    /// Where a session that has had its share of an event loop waits for the loop's next poll.
    let yield = EventLoopYield()
    /// The listeners now bound, by name, in configuration order.
    let listeners = NIOLockedValueBox<[(name: String, listener: Listener)]>([])
    let nextSerial = NIOLockedValueBox<UInt64>(0)
    /// The drain's timing; a reload may change it.
    let drainSettings: NIOLockedValueBox<ServerSettings>
    /// ACME challenges being answered (HTTP-01 on every listener, TLS-ALPN-01 on ACME ones).
    let acmeChallenges: ACMEChallenges?

    /// The listeners bound now, in configuration order, with the addresses they really got
    /// (the admin API's overview and console).
    public var boundListeners: [BoundListener] {
        listeners.withLockedValue { $0 }.compactMap { name, listener in
            guard let address = listener.channel.withLockedValue({ $0?.localAddress }) else { return nil }
            return BoundListener(
                name: name,
                address: address,
                tls: listener.settings.withLockedValue { $0.configuration.tls != nil }
            )
        }
    }

    /// What the process around the server wants to hear (systemd's notify socket, tests).
    public struct Hooks: Sendable {
        /// Every listener is bound and accepting.
        public var ready: @Sendable ([BoundListener]) -> Void
        /// Draining has started.
        public var draining: @Sendable () -> Void
        /// Whether what must be up before the first connection is accepted (the supervised
        /// worker pools' first links) is up within the time given (`startTimeout`).
        public var started: @Sendable (TimeAmount) async -> Bool
        public init(
            ready: @escaping @Sendable ([BoundListener]) -> Void = { _ in },
            draining: @escaping @Sendable () -> Void = {},
            started: @escaping @Sendable (TimeAmount) async -> Bool = { _ in true }
        ) {
            self.ready = ready
            self.draining = draining
            self.started = started
        }
    }

    /// The longest the listeners wait for `Hooks.started` before accepting anyway (the routes
    /// that are not up yet are then reported as degraded).
    public static let startTimeout: TimeAmount = .seconds(10)

    /// Waits for `Hooks.started`; false when `startTimeout` passed first. A shutdown asked for
    /// meanwhile ends the wait.
    private func waitForStart() async -> Bool {
        let started = hooks.started
        let up = await cancelWhenGracefulShutdown { await started(Self.startTimeout) }
        if up { state.startGateOpened() }
        return up
    }

    /// Listeners are bound with reading off, so nothing is accepted before the gateway serves;
    /// this turns it on.
    func startAccepting(_ list: [Listener]) {
        for channel in list.compactMap({ $0.channel.withLockedValue { $0 } }) {
            channel.setOption(.autoRead, value: true).whenFailure { [logger] error in
                logger.error("a listener cannot accept", metadata: ["error": .string("\(error)")])
            }
        }
    }

    /// - Parameters:
    ///   - tls: the TLS side of each listener that has one, by listener name.
    ///   - services: what serves each route, by route name.
    ///   - activatedSockets: listening descriptors passed by systemd, by name and by number.
    public init(
        configuration: GatewayConfiguration,
        tls: [String: ServerTLS],
        services: [String: any RouteService],
        activatedSockets: [String: Int32] = [:],
        group: any EventLoopGroup,
        logger: Logger,
        state: GatewayState = GatewayState(),
        sessions: SessionDirectory = SessionDirectory(),
        metrics: GatewayMetrics? = nil,
        verifiers: [String: JWTVerifier] = [:],
        acmeChallenges: ACMEChallenges? = nil,
        hooks: Hooks = Hooks()
    ) {
        self.acmeChallenges = acmeChallenges
        self.limiter = ClientLimiter(settings: configuration.limits)
        self.metrics = metrics ?? GatewayMetrics(routes: configuration.routes.map(\.name), version: "")
        self.sessions = sessions
        self.configuration = configuration
        self.live = LiveSettings(
            routes: configuration.routes,
            http: configuration.http,
            verifiers: verifiers,
            services: services
        )
        self.activatedSockets = NIOLockedValueBox(activatedSockets)
        self.hooks = hooks
        self.group = group
        self.logger = logger
        self.state = state
        self.drainSettings = NIOLockedValueBox(configuration.server)
        self.initialTLS = tls
    }

    let initialTLS: [String: ServerTLS]

    public func run() async throws {
        var bound: [BoundListener] = []
        do {
            for listenerConfiguration in configuration.listeners {
                let (listener, address) = try await bind(
                    listenerConfiguration,
                    tls: initialTLS[listenerConfiguration.name]
                )
                listeners.withLockedValue { $0.append((listenerConfiguration.name, listener)) }
                bound.append(
                    BoundListener(
                        name: listenerConfiguration.name,
                        address: address,
                        tls: listenerConfiguration.tls != nil
                    )
                )
            }
        } catch {
            await closeListeners(
                listeners.withLockedValue { list in
                    defer { list = [] }
                    return list.map(\.listener)
                }
            )
            throw error
        }
        // Accept once the routes that start with the gateway can serve (its own worker processes
        // have linked), waiting at most `startTimeout`: meanwhile connections wait in the listen
        // queue — the one that woke a socket-activated gateway and those queued across a restart
        // too — and are then served, rather than answered `503 starting`.
        let live = self.live
        state.setRouteDegradations {
            live.current.services.sorted { $0.key < $1.key }.compactMap { name, service in
                service.degradation.map { "routes.\(name): \($0)" }
            }
        }
        state.listenersBound()
        let waited = await waitForStart()
        if !waited {
            logger.warning(
                "routes not ready after \(ValueParsing.format(Self.startTimeout)): accepting connections anyway",
                metadata: ["degraded": .string(state.degradation?.reason ?? "")]
            )
        }
        // Ready before the first accept: a /readyz queued meanwhile is answered ready.
        state.setPhase(.ready)
        startAccepting(listeners.withLockedValue { $0.map(\.listener) })
        hooks.ready(bound)

        // Serve until a graceful shutdown (or cancellation) is asked for.
        try? await gracefulShutdown()
        await drain()
    }

    func drain() async {
        state.setPhase(.draining)
        hooks.draining()
        let timing = drainSettings.withLockedValue { $0 }
        logger.info(
            "draining",
            metadata: [
                "websockets": .stringConvertible(state.webSocketSessions),
                "listeners": .stringConvertible(listeners.withLockedValue { $0.count }),
                "timeout": .string(ValueParsing.format(timing.drainTimeout)),
            ]
        )
        // Every listener stops accepting at once; then every connection hears it.
        await closeListeners(listeners.withLockedValue { $0.map(\.listener) })
        connections.quiesce()
        let loop = group.next()
        let done = connections.empty(on: loop)
        let first = loop.makePromise(of: Bool.self)
        let timeout = loop.scheduleTask(in: timing.drainTimeout) { first.succeed(true) }
        done.whenComplete { _ in first.succeed(false) }
        if (try? await first.futureResult.get()) == true {
            logger.warning(
                "drain timeout: closing what is left",
                metadata: ["connections": .stringConvertible(connections.count)]
            )
            connections.closeAll()
            try? await connections.empty(on: loop).get()
        }
        timeout.cancel()
        yield.close()
        logger.info("stopped")
    }

    func closeListeners(_ list: [Listener]) async {
        let channels = list.compactMap { $0.channel.withLockedValue { $0 } }
        await withTaskGroup(of: Void.self) { group in
            for channel in channels { group.addTask { try? await channel.close() } }
        }
    }
}

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
    fileprivate final class Listener: Sendable {
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
    private let configuration: GatewayConfiguration
    /// Open WebSocket connections, for the admin API.
    public let sessions: SessionDirectory
    public let metrics: GatewayMetrics
    /// Connection limits overall and per client address; a reload updates them.
    public let limiter: ClientLimiter
    /// Listening descriptors passed by systemd and not adopted yet: each is adopted once (a
    /// listener drained by a reload closes it for good).
    private let activatedSockets: NIOLockedValueBox<[String: Int32]>
    private let hooks: Hooks
    private let logger: Logger
    private let group: any EventLoopGroup
    private let connections = ConnectionRegistry()
    /// The listeners now bound, by name, in configuration order.
    private let listeners = NIOLockedValueBox<[(name: String, listener: Listener)]>([])
    private let nextSerial = NIOLockedValueBox<UInt64>(0)
    /// The drain's timing; a reload may change it.
    private let drainSettings: NIOLockedValueBox<ServerSettings>
    /// ACME challenges being answered (HTTP-01 on every listener, TLS-ALPN-01 on ACME ones).
    private let acmeChallenges: ACMEChallenges?

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
        /// Every listener is bound and every route can serve.
        public var ready: @Sendable ([BoundListener]) -> Void
        /// Draining has started.
        public var draining: @Sendable () -> Void
        public init(
            ready: @escaping @Sendable ([BoundListener]) -> Void = { _ in },
            draining: @escaping @Sendable () -> Void = {}
        ) {
            self.ready = ready
            self.draining = draining
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

    private let initialTLS: [String: ServerTLS]

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
        // Ready once every listener is bound and every route can serve (a worker route once an
        // instance is linked).
        let live = self.live
        state.setReadinessCheck { live.current.services.values.allSatisfy(\.isReady) }
        state.setPhase(.ready)
        let hooks = self.hooks
        let state = self.state
        Task {
            // Tell the world only once every route can serve (a worker route: once linked).
            while state.readiness == .starting && state.phase == .ready {
                try? await Task.sleep(nanoseconds: 20_000_000)
            }
            if state.phase == .ready { hooks.ready(bound) }
        }

        // Serve until a graceful shutdown (or cancellation) is asked for.
        try? await gracefulShutdown()
        await drain()
    }

    private func drain() async {
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
        logger.info("stopped")
    }

    private func closeListeners(_ list: [Listener]) async {
        let channels = list.compactMap { $0.channel.withLockedValue { $0 } }
        await withTaskGroup(of: Void.self) { group in
            for channel in channels { group.addTask { try? await channel.close() } }
        }
    }

    // MARK: Reload

    /// A reload's listeners: what to bind, what to drain, what changes in place.
    public struct ListenerChange: Sendable {
        /// Listeners bound and waiting to be committed.
        fileprivate var bound: [(name: String, listener: Listener)] = []
        fileprivate var kept: [(Listener, Listener.Settings)] = []
        fileprivate var removed: [Listener] = []
        fileprivate var order: [String] = []
        /// What the change does, for the reload's log line.
        public var summary: [String] = []
        public var isEmpty: Bool { bound.isEmpty && removed.isEmpty }
    }

    /// Binds the listeners a new configuration adds (or moves to another address) and works out
    /// the rest; nothing is in force until `commit`. An address that cannot be bound throws, and
    /// what was bound so far is closed again.
    public func prepareListeners(
        _ configurations: [ListenerConfiguration],
        tls: [String: ServerTLS]
    ) async throws -> ListenerChange {
        var change = ListenerChange()
        let current = listeners.withLockedValue { $0 }
        do {
            for configuration in configurations {
                change.order.append(configuration.name)
                if let existing = current.first(where: { $0.name == configuration.name })?.listener,
                    existing.settings.withLockedValue({ $0.configuration.address }) == configuration.address
                {
                    change.kept.append((existing, .init(configuration: configuration, tls: tls[configuration.name])))
                    continue
                }
                let (listener, address) = try await bind(configuration, tls: tls[configuration.name])
                change.bound.append((configuration.name, listener))
                change.summary.append("listeners.\(configuration.name) bound at \(Self.describe(address))")
            }
        } catch {
            await closeListeners(change.bound.map(\.listener))
            throw error
        }
        for (name, listener) in current where !change.kept.contains(where: { $0.0 === listener }) {
            change.removed.append(listener)
            change.summary.append("listeners.\(name) drained")
        }
        return change
    }

    /// Gives up a prepared change: what it bound is closed.
    public func abandon(_ change: ListenerChange) async {
        await closeListeners(change.bound.map(\.listener))
    }

    /// Puts a prepared change in force: kept listeners take their new settings, new ones join,
    /// removed ones stop accepting and their connections are drained like at shutdown.
    public func commit(_ change: ListenerChange, server: ServerSettings) async {
        drainSettings.withLockedValue { $0 = server }
        for (listener, settings) in change.kept { listener.settings.withLockedValue { $0 = settings } }
        var byName: [String: Listener] = [:]
        for (listener, settings) in change.kept { byName[settings.configuration.name] = listener }
        for (name, listener) in change.bound { byName[name] = listener }
        let ordered = change.order.compactMap { name in byName[name].map { (name: name, listener: $0) } }
        listeners.withLockedValue { $0 = ordered }
        await closeListeners(change.removed)
        for listener in change.removed { connections.quiesce(listener: listener.serial) }
    }

    // MARK: Binding

    private func bind(_ configuration: ListenerConfiguration, tls: ServerTLS?) async throws -> (Listener, SocketAddress)
    {
        let serial = nextSerial.withLockedValue {
            $0 += 1
            return $0
        }
        let listener = Listener(serial: serial, settings: .init(configuration: configuration, tls: tls))
        let state = self.state
        let logger = self.logger
        let live = self.live
        let drainSettings = self.drainSettings
        let sessions = self.sessions
        let metrics = self.metrics
        let limiter = self.limiter
        let connections = self.connections
        let acmeChallenges = self.acmeChallenges
        let name = configuration.name
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptErrorLogger(listener: name, logger: logger))
                }
            }
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelOption(.recvAllocator, value: ReceiveBuffers.connection)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    connections.add(channel, listener: serial)
                    let settings = listener.settings.withLockedValue { $0 }
                    let http = live.current.http
                    let dependencies = HTTPConnectionHandler.Dependencies(
                        live: live,
                        state: state,
                        logger: logger,
                        drainSpread: drainSettings.withLockedValue { $0.drainSpread },
                        sessions: sessions,
                        metrics: metrics,
                        limiter: limiter,
                        hsts: settings.configuration.tls?.hsts,
                        redirectHTTPSPort: settings.configuration.redirectHTTPSPort,
                        acmeChallenges: acmeChallenges,
                        proxyProtocol: settings.configuration.proxyProtocol
                    )
                    try Self.configureConnection(
                        channel: channel,
                        listener: name,
                        tls: settings.tls,
                        http2: settings.configuration.tls?.http2 ?? false,
                        http: http,
                        dependencies: dependencies,
                        state: state
                    )
                }
            }
        let channel: any Channel
        switch configuration.address {
        case .tcp(let host, let port):
            channel = try await bootstrap.bind(host: host, port: port).get()
        case .unix(let path):
            channel = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        case .systemd(let socketName):
            // Adopted once: the name and its number both stop naming a socket we may use.
            let descriptor = activatedSockets.withLockedValue { sockets -> Int32? in
                guard let descriptor = sockets[socketName] else { return nil }
                sockets = sockets.filter { $0.value != descriptor }
                return descriptor
            }
            guard let descriptor else {
                throw GatewayServerError(
                    message:
                        "listener \(name): no socket named '\(socketName)' was passed (LISTEN_FDS), or it was already used"
                )
            }
            channel = try await bootstrap.withBoundSocket(descriptor).get()
        }
        listener.channel.withLockedValue { $0 = channel }
        let address = channel.localAddress!
        logger.info(
            "listening",
            metadata: [
                "listener": .string(name),
                "address": .string(Self.describe(address)),
                "tls": .stringConvertible(configuration.tls != nil),
            ]
        )
        return (listener, address)
    }

    /// TLS (when configured) → request guard → HTTP/1.1 codec → the gateway's HTTP handler; on a
    /// TLS listener with `http2`, ALPN chooses between that and HTTP/2.
    static func configureConnection(
        channel: any Channel,
        listener: String,
        tls: ServerTLS?,
        http2: Bool = false,
        http: HTTPSettings,
        dependencies: HTTPConnectionHandler.Dependencies,
        state: GatewayState
    ) throws {
        state.connectionOpened()
        channel.closeFuture.whenComplete { _ in state.connectionClosed() }
        // Behind a load balancer the PROXY header comes first, before TLS.
        var origin: ConnectionOrigin?
        if let settings = dependencies.proxyProtocol {
            let connectionOrigin = ConnectionOrigin()
            origin = connectionOrigin
            try channel.pipeline.syncOperations.addHandler(
                ProxyProtocolHandler(
                    settings: settings,
                    origin: connectionOrigin,
                    timeout: http.headerTimeout,
                    logger: dependencies.logger,
                    metrics: dependencies.metrics
                )
            )
        }
        if let tls, let challenges = dependencies.acmeChallenges, tls.answersTLSALPN01 {
            // TLS-ALPN-01: the ClientHello decides between the challenge and the normal pipeline.
            try channel.pipeline.syncOperations.addHandler(
                TLSALPNChallengeRouter(challenges: challenges, timeout: http.headerTimeout) { pipeline in
                    try addNormalHandlers(
                        pipeline: pipeline,
                        listener: listener,
                        tls: tls,
                        http2: http2,
                        http: http,
                        dependencies: dependencies,
                        state: state,
                        origin: origin
                    )
                }
            )
        } else {
            try addNormalHandlers(
                pipeline: channel.pipeline.syncOperations,
                listener: listener,
                tls: tls,
                http2: http2,
                http: http,
                dependencies: dependencies,
                state: state,
                origin: origin
            )
        }
    }

    private static func addNormalHandlers(
        pipeline: ChannelPipeline.SynchronousOperations,
        listener: String,
        tls: ServerTLS?,
        http2: Bool,
        http: HTTPSettings,
        dependencies: HTTPConnectionHandler.Dependencies,
        state: GatewayState,
        origin: ConnectionOrigin?
    ) throws {
        if let tls {
            try pipeline.addHandler(NIOSSLServerHandler(context: tls.context))
            try pipeline.addHandler(TLSHandshakeTimer(listener: listener, metrics: dependencies.metrics))
        }
        if tls != nil && http2 {
            try pipeline.addHandler(
                HTTPVersionSelector(
                    timeout: http.headerTimeout,
                    http1: { pipeline in
                        try addHTTP1Handlers(
                            pipeline: pipeline,
                            http: http,
                            dependencies: dependencies,
                            state: state,
                            origin: origin
                        )
                    },
                    http2: { pipeline in
                        try addHTTP2Handlers(
                            pipeline: pipeline,
                            listener: listener,
                            http: http,
                            dependencies: dependencies,
                            origin: origin
                        )
                    },
                    failed: { error, context in
                        HTTPConnectionHandler.connectionFailed(
                            error,
                            context: context,
                            dependencies: dependencies,
                            peer: origin?.client ?? context.channel.remoteAddress
                        )
                    }
                )
            )
            return
        }
        try addHTTP1Handlers(pipeline: pipeline, http: http, dependencies: dependencies, state: state, origin: origin)
    }

    /// HTTP/2 after ALPN chose it: NIO's HTTP/2 handler announcing extended CONNECT (RFC 8441 §3),
    /// the keeper and NIO's connection manager (GOAWAY on drain and idleness), and on each stream
    /// `HTTP2StreamCodec` before the same HTTP handler as HTTP/1.1's.
    private static func addHTTP2Handlers(
        pipeline: ChannelPipeline.SynchronousOperations,
        listener: String,
        http: HTTPSettings,
        dependencies: HTTPConnectionHandler.Dependencies,
        origin: ConnectionOrigin?
    ) throws {
        dependencies.metrics.http2ConnectionOpened(listener: listener)
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: HTTP2ConnectionKeeper.maxConcurrentStreams),
            HTTP2Setting(parameter: .maxHeaderListSize, value: http.maxHeaderBytes),
            HTTP2Setting(parameter: .enableConnectProtocol, value: 1),
        ]
        var stream = NIOHTTP2Handler.StreamConfiguration()
        // A session's own send queue holds what the client has not taken; the stream's buffer
        // only says when to stop (as the socket's watermarks do on HTTP/1.1).
        stream.outboundBufferSizeHighWatermark = 64 * 1024
        stream.outboundBufferSizeLowWatermark = 32 * 1024
        let keeper = HTTP2ConnectionKeeper(idleTimeout: http.idleTimeout, logger: dependencies.logger)
        let manager = NIOHTTP2ServerConnectionManagementHandler(
            eventLoop: pipeline.eventLoop,
            configuration: .init(maxIdleTime: nil, maxAge: nil, maxGraceTime: nil, keepalive: nil)
        )
        // Streams live on their connection's event loop.
        let originBound = NIOLoopBound(origin, eventLoop: pipeline.eventLoop)
        _ = try pipeline.configureHTTP2Pipeline(
            mode: .server,
            connectionConfiguration: connection,
            streamConfiguration: stream,
            streamDelegate: keeper.streamDelegate(manager: manager, eventLoop: pipeline.eventLoop)
        ) { streamChannel in
            streamChannel.eventLoop.makeCompletedFuture {
                let origin = originBound.value
                let codec = HTTP2StreamCodec(requestTimeout: http.headerTimeout)
                try streamChannel.pipeline.syncOperations.addHandler(codec)
                try streamChannel.pipeline.syncOperations.addHandler(
                    HTTPConnectionHandler(dependencies: dependencies, transport: .http2(codec), origin: origin)
                )
            }
        }
        try pipeline.addHandler(keeper)
        try pipeline.addHandler(manager)
    }

    /// HTTP/1.1: request guard, NIO's codec, the gateway's HTTP handler.
    private static func addHTTP1Handlers(
        pipeline: ChannelPipeline.SynchronousOperations,
        http: HTTPSettings,
        dependencies: HTTPConnectionHandler.Dependencies,
        state: GatewayState,
        origin: ConnectionOrigin?
    ) throws {
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderListSize = http.maxHeaderBytes
        limits.maxHeaderFieldSize = http.maxHeaderBytes
        limits.maxHeaderFieldCount = 256
        let requestGuard = HTTPRequestGuard(
            maxHeaderBytes: http.maxHeaderBytes,
            headerTimeout: http.headerTimeout,
            idleTimeout: http.idleTimeout,
            onReject: { [metrics = dependencies.metrics] status in
                state.refused(status: status)
                metrics.handshakeFailed(reason: "http_\(status)")
            }
        )
        let decoder = ByteToMessageHandler(
            HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes, limitConfiguration: limits)
        )
        let encoder = HTTPResponseEncoder()
        try pipeline.addHandler(requestGuard)
        try pipeline.addHandler(decoder)
        try pipeline.addHandler(encoder)
        try pipeline.addHandler(
            HTTPConnectionHandler(
                dependencies: dependencies,
                transport: .http1(decoder: decoder, encoder: encoder, requestGuard: requestGuard),
                origin: origin
            )
        )
    }

    public static func describe(_ address: SocketAddress) -> String {
        switch address {
        case .v4: "\(address.ipAddress ?? "?"):\(address.port ?? 0)"
        case .v6: "[\(address.ipAddress ?? "?")]:\(address.port ?? 0)"
        case .unixDomainSocket: "unix:\(address.pathname ?? "?")"
        }
    }
}

struct GatewayServerError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Logs what goes wrong while accepting or setting up a connection (descriptor limits, a
/// connection's pipeline that cannot be built): otherwise such a connection would just vanish.
final class AcceptErrorLogger: ChannelInboundHandler {
    typealias InboundIn = any Channel
    let listener: String
    let logger: Logger

    init(listener: String, logger: Logger) {
        self.listener = listener
        self.logger = logger
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.warning(
            "cannot accept a connection",
            metadata: ["listener": .string(listener), "error": .string("\(error)")]
        )
    }
}

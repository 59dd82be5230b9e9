import GatewayAuth
import GatewayCore
import GatewayMetrics
import GatewayTLS
import GatewayWebSocket
import Logging
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle

/// Binds every listener and serves until a graceful shutdown, then drains: stop accepting,
/// `/readyz` → 503, every WebSocket closed with 1001, and whatever is left after the drain
/// timeout closed by force.
public final class GatewayServer: Service, Sendable {
    /// A bound listener, with the address it really got (port 0 becomes a real port).
    public struct BoundListener: Sendable {
        public var name: String
        public var address: SocketAddress
        public var tls: Bool
    }

    public let state: GatewayState
    /// Routes and HTTP limits for new connections; `reload` replaces them.
    public let live: LiveSettings
    private let configuration: GatewayConfiguration
    private let tls: [String: ServerTLS]
    private let services: [String: any RouteService]
    /// Open WebSocket connections, for the admin API.
    public let sessions: SessionDirectory
    public let metrics: GatewayMetrics
    /// Connection limits overall and per client address; a reload updates them.
    public let limiter: ClientLimiter
    private let activatedSockets: [String: Int32]
    private let hooks: Hooks
    private let logger: Logger
    private let group: any EventLoopGroup
    private let connections = ConnectionRegistry()
    /// ACME challenges being answered (HTTP-01 on every listener, TLS-ALPN-01 on ACME ones).
    private let acmeChallenges: ACMEChallenges?

    /// - Parameters:
    ///   - tls: the TLS side of each listener that has one, by listener name.
    /// What the process around the server wants to hear (systemd's notify socket, tests).
    public struct Hooks: Sendable {
        /// Every listener is bound and every route can serve.
        public var ready: @Sendable ([BoundListener]) -> Void
        /// Draining has started.
        public var draining: @Sendable () -> Void
        public init(ready: @escaping @Sendable ([BoundListener]) -> Void = { _ in }, draining: @escaping @Sendable () -> Void = {}) {
            self.ready = ready
            self.draining = draining
        }
    }

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
        self.live = LiveSettings(routes: configuration.routes, http: configuration.http, verifiers: verifiers)
        self.tls = tls
        self.services = services
        self.activatedSockets = activatedSockets
        self.hooks = hooks
        self.group = group
        self.logger = logger
        self.state = state
    }

    public func run() async throws {
        let quiesce = ServerQuiescingHelper(group: group)
        var channels: [any Channel] = []
        var bound: [BoundListener] = []
        do {
            for listener in configuration.listeners {
                let channel = try await bind(listener, quiesce: quiesce)
                channels.append(channel)
                let address = channel.localAddress!
                bound.append(BoundListener(name: listener.name, address: address, tls: listener.tls != nil))
                logger.info("listening", metadata: [
                    "listener": .string(listener.name),
                    "address": .string(Self.describe(address)),
                    "tls": .stringConvertible(listener.tls != nil),
                ])
            }
        } catch {
            for channel in channels { try? await channel.close() }
            throw error
        }
        // Ready once every listener is bound and every route can serve (a worker route once an
        // instance is linked).
        let services = self.services
        state.setReadinessCheck { services.values.allSatisfy(\.isReady) }
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
        await drain(quiesce: quiesce, channels: channels)
    }

    private func drain(quiesce: ServerQuiescingHelper, channels: [any Channel]) async {
        state.setPhase(.draining)
        hooks.draining()
        logger.info("draining", metadata: [
            "websockets": .stringConvertible(state.webSocketSessions),
            "timeout": .string(ValueParsing.format(configuration.server.drainTimeout)),
        ])
        let done = group.next().makePromise(of: Void.self)
        quiesce.initiateShutdown(promise: done)
        let timedOut = group.next().makePromise(of: Void.self)
        let timeout = group.next().scheduleTask(in: configuration.server.drainTimeout) {
            timedOut.succeed()
        }
        // Whichever comes first: every connection closed, or the drain timeout.
        let first = group.next().makePromise(of: Bool.self)
        done.futureResult.whenComplete { _ in first.succeed(false) }
        timedOut.futureResult.whenComplete { _ in first.succeed(true) }
        if (try? await first.futureResult.get()) == true {
            logger.warning("drain timeout: closing what is left", metadata: ["connections": .stringConvertible(state.httpConnections)])
            connections.closeAll()
        }
        timeout.cancel()
        for channel in channels { try? await channel.close() }
        logger.info("stopped")
    }

    private func bind(_ listener: ListenerConfiguration, quiesce: ServerQuiescingHelper) async throws -> any Channel {
        let serverTLS = tls[listener.name]
        let state = self.state
        let services = self.services
        let logger = self.logger
        let live = self.live
        let drainSpread = configuration.server.drainSpread
        let sessions = self.sessions
        let metrics = self.metrics
        let limiter = self.limiter
        let connections = self.connections
        let acmeChallenges = self.acmeChallenges
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                    try channel.pipeline.syncOperations.addHandler(AcceptErrorLogger(listener: listener.name, logger: logger))
                }
            }
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    connections.add(channel)
                    let settings = live.current
                    let dependencies = HTTPConnectionHandler.Dependencies(
                        routes: settings.routes, verifiers: settings.verifiers, state: state, services: services, logger: logger,
                        drainSpread: drainSpread, sessions: sessions, metrics: metrics, limiter: limiter,
                        hsts: listener.tls?.hsts, redirectHTTPSPort: listener.redirectHTTPSPort, acmeChallenges: acmeChallenges
                    )
                    try Self.configureConnection(channel: channel, listener: listener.name, tls: serverTLS, http: settings.http, dependencies: dependencies, state: state)
                }
            }
        switch listener.address {
        case .tcp(let host, let port):
            return try await bootstrap.bind(host: host, port: port).get()
        case .unix(let path):
            return try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        case .systemd(let name):
            guard let descriptor = activatedSockets[name] else {
                throw GatewayServerError(message: "listener \(listener.name): no socket named '\(name)' was passed (LISTEN_FDS)")
            }
            return try await bootstrap.withBoundSocket(descriptor).get()
        }
    }

    /// TLS (when configured) → request guard → HTTP/1.1 codec → the gateway's HTTP handler.
    static func configureConnection(channel: any Channel, listener: String, tls: ServerTLS?, http: HTTPSettings, dependencies: HTTPConnectionHandler.Dependencies, state: GatewayState) throws {
        state.connectionOpened()
        channel.closeFuture.whenComplete { _ in state.connectionClosed() }
        if let tls, let challenges = dependencies.acmeChallenges, tls.answersTLSALPN01 {
            // TLS-ALPN-01: the ClientHello decides between the challenge and the normal pipeline.
            try channel.pipeline.syncOperations.addHandler(TLSALPNChallengeRouter(challenges: challenges, timeout: http.headerTimeout) { pipeline in
                try addNormalHandlers(pipeline: pipeline, listener: listener, tls: tls, http: http, dependencies: dependencies, state: state)
            })
        } else {
            try addNormalHandlers(pipeline: channel.pipeline.syncOperations, listener: listener, tls: tls, http: http, dependencies: dependencies, state: state)
        }
    }

    private static func addNormalHandlers(pipeline: ChannelPipeline.SynchronousOperations, listener: String, tls: ServerTLS?, http: HTTPSettings, dependencies: HTTPConnectionHandler.Dependencies, state: GatewayState) throws {
        if let tls {
            try pipeline.addHandler(NIOSSLServerHandler(context: tls.context))
            try pipeline.addHandler(TLSHandshakeTimer(listener: listener, metrics: dependencies.metrics))
        }
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
        let decoder = ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes, limitConfiguration: limits))
        let encoder = HTTPResponseEncoder()
        try pipeline.addHandler(requestGuard)
        try pipeline.addHandler(decoder)
        try pipeline.addHandler(encoder)
        try pipeline.addHandler(HTTPConnectionHandler(dependencies: dependencies, decoder: decoder, encoder: encoder, requestGuard: requestGuard))
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
        logger.warning("cannot accept a connection", metadata: ["listener": .string(listener), "error": .string("\(error)")])
    }
}

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

/// Listening sockets: bound, adopted from systemd, and what each accepted connection gets.
extension GatewayServer {
    /// A plain listener's redirect: to the hosts of every TLS listener's certificates as they
    /// are when a request comes, and the listener's own `redirect_hosts`.
    static func redirect(
        port: Int,
        extraHosts: [String],
        listeners: NIOLockedValueBox<[(name: String, listener: Listener)]>
    ) -> HTTPSRedirect {
        let extra = CertificateHosts(names: extraHosts)
        return HTTPSRedirect(port: port) {
            var hosts = extra
            for entry in listeners.withLockedValue({ $0 }) {
                if let tls = entry.listener.settings.withLockedValue({ $0.tls }) { hosts.formUnion(tls.hosts) }
            }
            return hosts
        }
    }

    func bind(_ configuration: ListenerConfiguration, tls: ServerTLS?) async throws -> (Listener, SocketAddress) {
        let serial = nextSerial.withLockedValue {
            $0 += 1
            return $0
        }
        let listener = Listener(serial: serial, settings: .init(configuration: configuration, tls: tls))
        let state = self.state
        let logger = self.logger
        let live = self.live
        let connections = self.connections
        let name = configuration.name
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // Nothing is accepted until the server starts accepting (`startAccepting`).
            .serverChannelOption(.autoRead, value: false)
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
                    let dependencies = self.connectionDependencies(settings.configuration)
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
        do {
            channel = try await open(configuration.address, listener: name, with: bootstrap)
        } catch let error as GatewayServerError {
            throw error
        } catch {
            throw GatewayServerError(bindFailure: error, listener: name, address: configuration.address)
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

    /// What every connection of a listener shares: the gateway's parts and the listener's own
    /// HSTS, redirect and PROXY protocol settings as they are when it connects.
    private func connectionDependencies(_ configuration: ListenerConfiguration) -> HTTPConnectionHandler.Dependencies {
        HTTPConnectionHandler.Dependencies(
            live: live,
            state: state,
            logger: logger,
            drainSpread: drainSettings.withLockedValue { $0.drainSpread },
            sessions: sessions,
            metrics: metrics,
            limiter: limiter,
            hsts: configuration.tls?.hsts,
            redirect: configuration.redirectHTTPSPort.map {
                Self.redirect(port: $0, extraHosts: configuration.redirectHosts, listeners: listeners)
            },
            acmeChallenges: acmeChallenges,
            proxyProtocol: configuration.proxyProtocol,
            yield: yield
        )
    }

    /// TLS (when configured) → request guard → HTTP/1.1 codec → the gateway's HTTP handler; on a
    /// TLS listener with `http2`, ALPN chooses between that and HTTP/2.
    /// Binds an address, or adopts the socket systemd passed under a name.
    private func open(
        _ address: ListenAddress,
        listener name: String,
        with bootstrap: ServerBootstrap
    ) async throws -> any Channel {
        switch address {
        case .tcp(let host, let port):
            return try await bootstrap.bind(host: host, port: port).get()
        case .unix(let path):
            return try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
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
            return try await bootstrap.withBoundSocket(descriptor).get()
        }
    }

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

    static func addNormalHandlers(
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
    static func addHTTP2Handlers(
        pipeline: ChannelPipeline.SynchronousOperations,
        listener: String,
        http: HTTPSettings,
        dependencies: HTTPConnectionHandler.Dependencies,
        origin: ConnectionOrigin?
    ) throws {
        dependencies.metrics.http2ConnectionOpened(listener: listener)
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(
                parameter: .maxConcurrentStreams,
                value: HTTP2StreamAdmission.enforcedLimit(advertised: HTTP2ConnectionKeeper.maxConcurrentStreams)
            ),
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
        // Before NIO's HTTP/2 handler, so it sees the frames that handler writes.
        try pipeline.addHandler(HTTP2ErrorCloser())
        try pipeline.addHandler(AdvertisedStreamLimit(advertised: HTTP2ConnectionKeeper.maxConcurrentStreams))
        let admission = NIOLoopBound(
            HTTP2StreamAdmission(limit: HTTP2ConnectionKeeper.maxConcurrentStreams),
            eventLoop: pipeline.eventLoop
        )
        _ = try pipeline.configureHTTP2Pipeline(
            mode: .server,
            connectionConfiguration: connection,
            streamConfiguration: stream,
            streamDelegate: keeper.streamDelegate(manager: manager, eventLoop: pipeline.eventLoop)
        ) { streamChannel in
            streamChannel.eventLoop.makeCompletedFuture {
                guard admission.value.admit(streamChannel) else {
                    return try streamChannel.pipeline.syncOperations.addHandler(HTTP2StreamAdmission.Refusal())
                }
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
    static func addHTTP1Handlers(
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

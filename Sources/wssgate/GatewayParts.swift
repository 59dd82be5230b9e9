import GatewayACME
import GatewayAdmin
import GatewayCluster
import GatewayConfigLoader
import GatewayCore
import GatewayEdge
import GatewayHub
import GatewayMetrics
import GatewayTLS
import GatewayWebSocket
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Prometheus
import ServiceLifecycle
import Systemd

/// What the gateway is made of besides its listeners: the hub and its histories, the session
/// directory, the cluster link, the routes' services, the state `/readyz` reports and the ACME
/// manager — each made once at start, from the prepared configuration.
struct GatewayParts {
    /// A part that cannot be made: the gateway does not start (exit 1), and the log says which.
    struct StartupError: Error {
        var message: String
        var underlying: any Error
    }

    let hub: Hub
    let sessions: SessionDirectory
    let cluster: ClusterNode?
    let routeServices: RouteServices
    let state: GatewayState
    let acmeChallenges: ACMEChallenges?
    let certificates: CertificateManager?
    let group: any EventLoopGroup

    init(
        _ prepared: PreparedGateway,
        embedded: Bool,
        environment: [String: String],
        group: any EventLoopGroup,
        logger: Logger
    ) throws(StartupError) {
        let settings = prepared.configuration
        self.group = group
        hub = Hub()
        let histories: [TopicHistory]
        do {
            histories = try Self.histories(
                for: settings.routes,
                clustered: settings.cluster != nil,
                embedded: embedded,
                environment: environment,
                logger: logger
            )
            hub.setHistories(histories)
        } catch {
            throw StartupError(message: "cannot open a topic history", underlying: error)
        }
        sessions = SessionDirectory(idBase: settings.cluster.map(ClusterNode.idBase(for:)) ?? 0)
        let identities = ConnectionIdentities(hub: hub, directory: sessions)
        let (hub, sessions) = (hub, sessions)
        do {
            cluster = try settings.cluster.map {
                try ClusterNode(settings: $0, hub: hub, sessions: sessions, logger: logger)
            }
        } catch {
            throw StartupError(message: "cannot set up the cluster link", underlying: error)
        }
        // In a cluster the topics' histories are shared, in Redis.
        if let cluster {
            for history in histories { history.keep(in: cluster) }
        }
        do {
            routeServices = try RouteServices(
                routes: settings.routes,
                identities: identities,
                group: group,
                logger: logger,
                cluster: cluster
            )
        } catch {
            throw StartupError(message: "cannot set up a worker route", underlying: error)
        }
        let state = GatewayState()
        self.state = state
        (acmeChallenges, certificates) = Self.certificates(prepared, state: state, group: group, logger: logger)
        Self.watchDegradation(of: state, cluster: cluster, certificates: certificates)
    }

    /// Listeners with tls.acme: one manager orders and renews their certificates; HTTP-01 is
    /// answered on the plain listeners, TLS-ALPN-01 on the ACME listeners themselves.
    private static func certificates(
        _ prepared: PreparedGateway,
        state: GatewayState,
        group: any EventLoopGroup,
        logger: Logger
    ) -> (ACMEChallenges?, CertificateManager?) {
        let settings = prepared.configuration
        let acmeListeners = settings.listeners.compactMap {
            listener -> (name: String, tls: ServerTLS, settings: TLSSettings)? in
            guard let tlsSettings = listener.tls, tlsSettings.acme != nil, let serverTLS = prepared.tls[listener.name]
            else { return nil }
            return (listener.name, serverTLS, tlsSettings)
        }
        guard !acmeListeners.isEmpty else { return (nil, nil) }
        let challenges = ACMEChallenges()
        let manager = CertificateManager(
            listeners: acmeListeners,
            challenges: challenges,
            answersHTTP01: settings.listeners.contains { $0.tls == nil },
            group: group,
            logger: logger,
            userAgent: "wssgate/\(WSSGate.version)",
            listening: { await state.serves(on: group.next()) }
        )
        return (challenges, manager)
    }

    /// The cluster link and the certificates are parts the gateway serves without: `/readyz`
    /// names what is missing (and answers 503 only when the operator chose so).
    private static func watchDegradation(
        of state: GatewayState,
        cluster: ClusterNode?,
        certificates: CertificateManager?
    ) {
        guard cluster != nil || certificates != nil else { return }
        let blocks = cluster?.settings.degradedReadiness == .unready
        state.setDegradationCheck {
            var reasons: [String] = []
            var blocking = false
            if let reason = cluster?.degradedReason {
                reasons.append(reason)
                blocking = blocks
            }
            if let reason = certificates?.degradedReason { reasons.append(reason) }
            return reasons.isEmpty
                ? nil : GatewayState.Degradation(reason: reasons.joined(separator: "; "), blocksReadiness: blocking)
        }
    }

    /// The listeners and connections' side, over the routes' services; systemd hears when it
    /// is ready and when it drains.
    func server(
        _ prepared: PreparedGateway,
        activatedSockets: [String: Int32],
        metrics: GatewayMetrics,
        notifier: SystemdNotifier,
        logger: Logger
    ) -> GatewayServer {
        let routeServices = self.routeServices
        return GatewayServer(
            configuration: prepared.configuration,
            tls: prepared.tls,
            services: routeServices.services,
            activatedSockets: activatedSockets,
            group: group,
            logger: logger,
            state: state,
            sessions: sessions,
            metrics: metrics,
            verifiers: prepared.verifiers,
            acmeChallenges: acmeChallenges,
            hooks: .init(
                ready: { _ in notifier.notify("READY=1\nSTATUS=ready") },
                draining: { notifier.notify("STOPPING=1\nSTATUS=draining") },
                started: { await routeServices.supervisedPoolsLinked(within: $0) }
            )
        )
    }

    /// What reloads the configuration (SIGHUP, `wssgate reload`, the admin API) into these parts.
    func reload(
        _ prepared: PreparedGateway,
        loader: ConfigurationLoader,
        server: GatewayServer,
        startup: RunCommand.Startup,
        metrics: GatewayMetrics,
        logger: Logger
    ) -> ReloadService {
        ReloadService(
            loader: loader,
            server: server,
            routeServices: routeServices,
            tls: NIOLockedValueBox(prepared.tls),
            current: NIOLockedValueBox(prepared.configuration),
            logSettings: startup.logSettings,
            sessions: sessions,
            notifier: startup.notifier,
            logger: logger,
            metrics: metrics
        )
    }

    /// Every service of the gateway in the order they start. They shut down in reverse: the
    /// server drains first (clients get 1001, the workers hear every connection close), then
    /// the route services stop (worker pools stop their processes); the admin API and the
    /// cluster link stay up through the drain.
    func services(
        server: GatewayServer,
        reload: ReloadService,
        admin: AdminServer,
        systemd: SystemdService,
        logger: Logger
    ) -> [ServiceGroupConfiguration.ServiceConfiguration] {
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: systemd), .init(service: admin), .init(service: reload),
            .init(service: HeapTrimmer(state: state, logger: logger)),
        ]
        if let certificates { services.append(.init(service: certificates)) }
        if let cluster { services.append(.init(service: cluster)) }
        services.append(.init(service: routeServices))
        services.append(.init(service: server))
        return services
    }

    /// The admin API over these parts.
    func admin(
        _ settings: AdminSettings,
        server: GatewayServer,
        registry: PrometheusCollectorRegistry,
        reload: ReloadService,
        logger: Logger
    ) -> AdminServer {
        let state = self.state
        return AdminServer(
            settings: settings,
            api: AdminAPI(
                hub: hub,
                sessions: sessions,
                token: settings.token,
                cluster: cluster,
                certificates: certificates,
                routes: routeServices,
                metrics: {
                    var text: [UInt8] = []
                    registry.emit(into: &text)
                    return text
                },
                status: {
                    let degradation = state.degradation
                    let readiness = state.readiness
                    let word = readiness == .ready && degradation != nil ? "degraded" : readiness.rawValue
                    return AdminAPI.Status(readiness: word, degraded: degradation?.reason)
                },
                overview: {
                    AdminAPI.Overview(
                        listeners: server.boundListeners.map {
                            .init(name: $0.name, address: GatewayServer.describe($0.address), tls: $0.tls)
                        },
                        routes: server.live.current.routes.all.map {
                            .init(name: $0.name, path: $0.path, kind: $0.kind.rawValue)
                        }
                    )
                },
                reload: { await reload.request() }
            ),
            group: group,
            logger: logger
        )
    }

    /// The hub routes' histories, in the configuration's order (the first that covers a topic
    /// keeps it); file storage is read back here. In a cluster they live in Redis instead, and
    /// nothing is kept (or opened) here. The embedded default's playground falls back to memory
    /// when its file cannot be used (another gateway started without a file holds it).
    static func histories(
        for routes: [RouteConfiguration],
        clustered: Bool,
        embedded: Bool,
        environment: [String: String],
        logger: Logger
    ) throws -> [TopicHistory] {
        try routes.compactMap { route -> TopicHistory? in
            guard case .hub(let rules) = route.backend, var settings = rules.history else { return nil }
            if clustered { settings.storage = .memory }
            let history: TopicHistory
            do {
                history = try TopicHistory(route: route.name, settings: settings, environment: environment)
            } catch  where embedded && settings.storage == .file {
                logger.warning(
                    "the playground's history stays in memory",
                    metadata: ["route": .string(route.name), "error": .string("\(error)")]
                )
                settings.storage = .memory
                history = try TopicHistory(route: route.name, settings: settings, environment: environment)
            }
            logger.info(
                "topic history",
                metadata: [
                    "route": .string(route.name),
                    "storage": .string(clustered ? "redis" : settings.storage.rawValue),
                    "file": .string(history.path ?? "-"),
                ]
            )
            return history
        }
    }
}

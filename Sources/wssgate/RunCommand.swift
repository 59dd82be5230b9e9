import ArgumentParser
import GatewayACME
import GatewayAdmin
import GatewayCluster
import GatewayConfigLoader
import GatewayCore
import GatewayEdge
import GatewayHub
import GatewayLogging
import GatewayMetrics
import GatewayProxy
import GatewayTLS
import GatewayWebSocket
import GatewayWorkers
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Prometheus
import ReadableErrors
import ServiceLifecycle
import Systemd
import UnixSignals

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Serve (the default command). Without --config, serves the embedded default."
    )

    @Option(
        name: .shortAndLong,
        help: ArgumentHelp("The YAML configuration file (or WSSGATE_CONFIG).", valueName: "file")
    )
    var config: String?

    @Option(
        name: .customLong("set"),
        help: ArgumentHelp("Override a key: --set log.level=debug", valueName: "key=value")
    )
    var overrides: [String] = []

    func run() async throws {
        let environment = PreparedGateway.environment()
        let filePath = config ?? environment["WSSGATE_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        // Sockets from systemd: ours only if LISTEN_PID is us; not for the workers we start.
        let activated = ListenFileDescriptors(environment: environment)
        activated.markCloseOnExec()
        ListenFileDescriptors.consume()
        let notifier = SystemdNotifier(environment: environment)
        for variable in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] { unsetenv(variable) }
        // One set of log settings for every logger, so a reload changes them all at once; set up
        // before the configuration loads, in the format it asks for, so even a refusal is a line
        // of that format in the journal.
        let logSettings = CommandLog.settings(filePath: filePath, overrides: overrides)
        CommandLog.bootstrap(logSettings)
        let prepared = try await PreparedGateway.load(
            filePath: filePath,
            overrides: overrides,
            activatedSockets: activated.descriptors.map(\.name)
        )
        let settings = prepared.configuration
        let loaded = CommandLog.settings(settings.log)
        logSettings.update(level: loaded.level, format: loaded.format, redactor: loaded.redactor)
        let logger = Logger(label: "wssgate")
        let registry = PrometheusCollectorRegistry()
        var factory = DocumentedMetricsFactory(registry: registry)
        factory.durationBuckets["wssgate_tls_handshake_duration_seconds"] = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5),
        ]
        MetricsSystem.bootstrap(factory)
        let metrics = GatewayMetrics(
            routes: settings.routes.filter { $0.kind != .static }.map(\.name),
            version: WSSGate.version
        )
        metrics.prepare(
            .init(
                routes: settings.routes.filter { $0.kind != .static }.map(\.name),
                tlsListeners: settings.listeners.filter { $0.tls != nil }.map(\.name),
                http2Listeners: settings.listeners.filter { $0.tls?.http2 == true }.map(\.name),
                acme: settings.listeners.contains { $0.tls?.acme != nil }
            )
        )
        logger.info(
            "starting",
            metadata: [
                "version": .string(WSSGate.version),
                "config": .string(filePath ?? "embedded default"),
                "open_files": .stringConvertible(OpenFileLimit.raise()),
            ]
        )
        for (name, tls) in prepared.tls.sorted(by: { $0.key < $1.key }) {
            let material = tls.material
            logger.info(
                "certificate",
                metadata: [
                    "listener": .string(name),
                    "subject": .string(material.subject),
                    "sha256": .string(material.fingerprint),
                    "not_after": .string("\(material.notValidAfter)"),
                ]
            )
        }

        // Passed sockets by name and number; those no listener claims are closed, and said so.
        var activatedSockets: [String: Int32] = [:]
        for descriptor in activated.descriptors {
            activatedSockets[descriptor.name] = descriptor.fd
            activatedSockets[String(descriptor.fd)] = descriptor.fd
        }
        let claimed = Set(
            settings.listeners.compactMap { listener -> Int32? in
                if case .systemd(let name) = listener.address { return activatedSockets[name] }
                return nil
            }
        )
        for descriptor in activated.descriptors where !claimed.contains(descriptor.fd) {
            logger.warning(
                "a socket passed by systemd is not used by any listener",
                metadata: ["fd": .stringConvertible(descriptor.fd), "name": .string(descriptor.name)]
            )
            close(descriptor.fd)
        }

        let threads = settings.server.threads == 0 ? System.coreCount : settings.server.threads
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let hub = Hub()
        let histories: [TopicHistory]
        do {
            histories = try Self.histories(
                for: settings.routes,
                clustered: settings.cluster != nil,
                embedded: filePath == nil,
                environment: environment,
                logger: logger
            )
            hub.setHistories(histories)
        } catch {
            logger.error("cannot open a topic history", metadata: ["error": .string("\(error)")])
            try? await group.shutdownGracefully()
            throw ExitCode(1)
        }
        let sessions = SessionDirectory(idBase: settings.cluster.map(ClusterNode.idBase(for:)) ?? 0)
        let identities = ConnectionIdentities(hub: hub, directory: sessions)
        var cluster: ClusterNode?
        if let clusterSettings = settings.cluster {
            do {
                cluster = try ClusterNode(settings: clusterSettings, hub: hub, sessions: sessions, logger: logger)
            } catch {
                logger.error("cannot set up the cluster link", metadata: ["error": .string("\(error)")])
                try? await group.shutdownGracefully()
                throw ExitCode(1)
            }
        }
        // In a cluster the topics' histories are shared, in Redis.
        if let cluster {
            for history in histories { history.keep(in: cluster) }
        }
        let routeServices: RouteServices
        do {
            routeServices = try RouteServices(
                routes: settings.routes,
                identities: identities,
                group: group,
                logger: logger,
                cluster: cluster
            )
        } catch {
            logger.error("cannot set up a worker route", metadata: ["error": .string("\(error)")])
            try? await group.shutdownGracefully()
            throw ExitCode(1)
        }
        let state = GatewayState()
        // Listeners with tls.acme: one manager orders and renews their certificates; HTTP-01 is
        // answered on the plain listeners, TLS-ALPN-01 on the ACME listeners themselves.
        let acmeListeners = settings.listeners.compactMap {
            listener -> (name: String, tls: ServerTLS, settings: TLSSettings)? in
            guard let tlsSettings = listener.tls, tlsSettings.acme != nil, let serverTLS = prepared.tls[listener.name]
            else { return nil }
            return (listener.name, serverTLS, tlsSettings)
        }
        var acmeChallenges: ACMEChallenges?
        var certificates: CertificateManager?
        if !acmeListeners.isEmpty {
            let challenges = ACMEChallenges()
            acmeChallenges = challenges
            certificates = CertificateManager(
                listeners: acmeListeners,
                challenges: challenges,
                answersHTTP01: settings.listeners.contains { $0.tls == nil },
                group: group,
                logger: logger,
                userAgent: "wssgate/\(WSSGate.version)",
                listening: { state.phase != .starting }
            )
        }
        if cluster != nil || certificates != nil {
            let blocks = cluster?.settings.degradedReadiness == .unready
            state.setDegradationCheck { [cluster, certificates] in
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
        let server = GatewayServer(
            configuration: settings,
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
                started: { routeServices.supervisedPoolsLinked(on: $0) }
            )
        )
        let reload = ReloadService(
            loader: PreparedGateway.loader(
                filePath: filePath,
                overrides: overrides,
                activatedSockets: activated.descriptors.map(\.name)
            ),
            server: server,
            routeServices: routeServices,
            tls: NIOLockedValueBox(prepared.tls),
            current: NIOLockedValueBox(settings),
            logSettings: logSettings,
            sessions: sessions,
            notifier: notifier,
            logger: logger,
            metrics: metrics
        )
        let admin = AdminServer(
            settings: settings.admin,
            api: AdminAPI(
                hub: hub,
                sessions: sessions,
                token: settings.admin.token,
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
        let systemd = SystemdService(
            notifier: notifier,
            watchdog: WatchdogSettings(environment: environment, pid: getpid()),
            state: state,
            pools: { routeServices.pools },
            group: group,
            logger: logger
        )
        // Services shut down in reverse order: the server drains first (clients get 1001, the
        // workers hear every connection close), then the route services stop (worker pools
        // stop their processes); the admin API and the cluster link stay up through the drain.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: systemd), .init(service: admin), .init(service: reload),
            .init(service: HeapTrimmer(state: state, logger: logger)),
        ]
        if let certificates { services.append(.init(service: certificates)) }
        if let cluster { services.append(.init(service: cluster)) }
        services.append(.init(service: routeServices))
        services.append(.init(service: server))
        let serviceGroup = ServiceGroup(
            configuration: .init(
                services: services,
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        do {
            try await serviceGroup.run()
        } catch {
            logger.error("stopped with an error", metadata: ["error": .string(ReadableError.describe(error))])
            try? await group.shutdownGracefully()
            throw ExitCode(1)
        }
        try? await group.shutdownGracefully()
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

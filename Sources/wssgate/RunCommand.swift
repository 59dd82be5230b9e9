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
        let registry = Self.bootstrapMetrics()
        Self.logStart(prepared, filePath: filePath, logger: logger)
        try await serve(
            prepared,
            Startup(
                environment: environment,
                filePath: filePath,
                activated: activated,
                notifier: notifier,
                logSettings: logSettings,
                registry: registry
            ),
            logger: logger
        )
    }

    /// What `run` learned before the configuration was in force, for `serve`.
    struct Startup {
        var environment: [String: String]
        var filePath: String?
        var activated: ListenFileDescriptors
        var notifier: SystemdNotifier
        var logSettings: LiveLogSettings
        var registry: PrometheusCollectorRegistry
    }

    /// Makes the gateway's parts and services from the loaded configuration and runs them until
    /// a graceful shutdown (or an error, exit 1).
    private func serve(_ prepared: PreparedGateway, _ startup: Startup, logger: Logger) async throws {
        let settings = prepared.configuration
        let (environment, filePath, activated, notifier) = (
            startup.environment, startup.filePath, startup.activated, startup.notifier
        )
        let metrics = Self.gatewayMetrics(for: settings)
        let activatedSockets = Self.claim(activated, for: settings, logger: logger)
        let threads = settings.server.threads == 0 ? System.coreCount : settings.server.threads
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let parts: GatewayParts
        do {
            parts = try GatewayParts(
                prepared,
                embedded: filePath == nil,
                environment: environment,
                group: group,
                logger: logger
            )
        } catch {
            logger.error("\(error.message)", metadata: ["error": .string("\(error.underlying)")])
            try? await group.shutdownGracefully()
            throw ExitCode(1)
        }
        let routeServices = parts.routeServices
        let server = parts.server(
            prepared,
            activatedSockets: activatedSockets,
            metrics: metrics,
            notifier: notifier,
            logger: logger
        )
        let reload = parts.reload(
            prepared,
            loader: PreparedGateway.loader(
                filePath: filePath,
                overrides: overrides,
                activatedSockets: activated.descriptors.map(\.name)
            ),
            server: server,
            startup: startup,
            metrics: metrics,
            logger: logger
        )
        let admin = parts.admin(
            settings.admin,
            server: server,
            registry: startup.registry,
            reload: reload,
            logger: logger
        )
        let systemd = SystemdService(
            notifier: notifier,
            watchdog: WatchdogSettings(environment: environment, pid: getpid()),
            state: parts.state,
            pools: { routeServices.pools },
            group: group,
            logger: logger
        )
        let services = parts.services(
            server: server,
            reload: reload,
            admin: admin,
            systemd: systemd,
            logger: logger
        )
        let serviceGroup = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
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

    /// Metrics through swift-metrics, exported by swift-prometheus from the registry returned.
    static func bootstrapMetrics() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        var factory = DocumentedMetricsFactory(registry: registry)
        factory.durationBuckets["wssgate_tls_handshake_duration_seconds"] = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5),
        ]
        MetricsSystem.bootstrap(factory)
        return registry
    }

    /// The gateway's metrics, every series the configuration can have exported from the first
    /// scrape.
    static func gatewayMetrics(for settings: GatewayConfiguration) -> GatewayMetrics {
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
        return metrics
    }

    /// The start's log lines: version, configuration, descriptors, and each listener's certificate.
    static func logStart(_ prepared: PreparedGateway, filePath: String?, logger: Logger) {
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
    }

    /// Passed sockets by name and number; those no listener claims are closed, and said so.
    static func claim(
        _ activated: ListenFileDescriptors,
        for settings: GatewayConfiguration,
        logger: Logger
    ) -> [String: Int32] {
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
        return activatedSockets
    }
}

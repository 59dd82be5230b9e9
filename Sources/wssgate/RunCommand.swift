import ArgumentParser
import GatewayCore
import GatewayEdge
import GatewayHub
import GatewayWebSocket
import GatewayWorkers
import GatewayLogging
import GatewayTLS
import NIOCore
import Logging
import NIOPosix
import ServiceLifecycle
import UnixSignals

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Serve (the default command). Without --config, serves the embedded default."
    )

    @Option(name: .shortAndLong, help: ArgumentHelp("The YAML configuration file (or WSSGATE_CONFIG).", valueName: "file"))
    var config: String?

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a key: --set log.level=debug", valueName: "key=value"))
    var overrides: [String] = []

    func run() async throws {
        let filePath = config ?? PreparedGateway.environment()["WSSGATE_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        let prepared = try await PreparedGateway.load(filePath: filePath, overrides: overrides)
        let settings = prepared.configuration
        let format: LineLogHandler.Format = settings.log.format == .json ? .json : .logfmt
        let level = Logger.Level(rawValue: settings.log.level.rawValue) ?? .info
        LoggingSystem.bootstrap { label in LineLogHandler(label: label, format: format, level: level) }
        let logger = Logger(label: "wssgate")
        logger.info("starting", metadata: [
            "version": .string(WSSGate.version),
            "config": .string(filePath ?? "embedded default"),
        ])
        for (name, tls) in prepared.tls.sorted(by: { $0.key < $1.key }) {
            let material = tls.material
            logger.info("certificate", metadata: [
                "listener": .string(name),
                "subject": .string(material.subject),
                "sha256": .string(material.fingerprint),
                "not_after": .string("\(material.notValidAfter)"),
            ])
        }

        let threads = settings.server.threads == 0 ? System.coreCount : settings.server.threads
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let hub = Hub()
        let ids = ConnectionIDs()
        var routeServices: [String: any RouteService] = [:]
        var pools: [WorkerPool] = []
        for route in settings.routes {
            switch route.kind {
            case .echo:
                routeServices[route.name] = EchoRouteService()
            case .worker:
                do {
                    let pool = try WorkerPool(route: route, hub: hub, ids: ids, group: group, logger: logger)
                    pools.append(pool)
                    routeServices[route.name] = pool
                } catch {
                    logger.error("cannot set up a worker route", metadata: ["route": .string(route.name), "error": .string("\(error)")])
                    try? await group.shutdownGracefully()
                    throw ExitCode(1)
                }
            }
        }
        let server = GatewayServer(configuration: settings, tls: prepared.tls, services: routeServices, group: group, logger: logger)
        // Services shut down in reverse order: the server drains first (clients get 1001, the
        // workers hear every connection close), then the worker pools stop their processes.
        let serviceGroup = ServiceGroup(
            configuration: .init(
                services: pools.map { .init(service: $0) } + [.init(service: server)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        do {
            try await serviceGroup.run()
        } catch {
            logger.error("stopped with an error", metadata: ["error": .string("\(error)")])
            try? await group.shutdownGracefully()
            throw ExitCode(1)
        }
        try? await group.shutdownGracefully()
    }
}

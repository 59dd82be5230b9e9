import GatewayCluster
import GatewayCore
import GatewayHTTPBackend
import GatewayHub
import GatewayProxy
import GatewayWebSocket
import GatewayWorkers
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

/// The services behind the routes — worker pools, proxy probes, hub rules — built from the
/// configuration, run for the life of the gateway, and replaced route by route on reload.
///
/// A reload builds the services it needs (`prepare`), waits until the new worker pools are
/// linked, and only then puts them in force (`commit`): a pool that does not come up refuses
/// the reload and is stopped again, and nothing else has changed. Services a reload replaces
/// or removes are retired: a worker pool keeps serving the connections it has and stops when
/// the last one closes; a proxy's probe stops (joined connections do not need it).
///
/// Services run as children of this one, not of the `ServiceGroup`: the group counts a service
/// that returns as a failure, and a retired pool returns.
final class RouteServices: Service, RouteAdministration, Sendable {
    /// One route's service and what it needs to be retired.
    struct Entry: Sendable {
        var route: RouteConfiguration
        var service: any RouteService
        var pool: WorkerPool?
        var proxy: ProxyRouteService?
        var hub: HubRouteService?
        var http: HTTPBackendRouteService?
    }

    /// What a reload would change; nothing runs or is in force until `commit`.
    struct Plan: Sendable {
        var entries: [String: Entry]
        /// Services made for this reload, started by `prepare` and stopped by `abandon`.
        var fresh: [Entry]
        /// Services the new configuration no longer uses.
        var retired: [Entry]
        /// Hub routes kept with other rules.
        var hubRules: [(HubRouteService, HubRouteSettings)]
        /// Worker pools kept, whose new command a rolling deploy puts in force
        /// (`worker.on_change: move`).
        var deploys: [(WorkerPool, WorkerProgram)] = []
        var summary: [String]
    }

    private let hub: Hub
    private let identities: ConnectionIdentities
    private let group: any EventLoopGroup
    private let logger: Logger
    private let cluster: ClusterNode?
    private let entries: NIOLockedValueBox<[String: Entry]>
    /// Services to start, for the running `run`.
    private let starts = AsyncStream<Entry>.makeStream()

    init(
        routes: [RouteConfiguration],
        identities: ConnectionIdentities,
        group: any EventLoopGroup,
        logger: Logger,
        cluster: ClusterNode?
    ) throws {
        self.hub = identities.hub
        self.identities = identities
        self.group = group
        self.logger = logger
        self.cluster = cluster
        var made: [String: Entry] = [:]
        for route in routes {
            if let entry = try Self.make(route, identities: identities, group: group, logger: logger, cluster: cluster)
            {
                made[route.name] = entry
            }
        }
        entries = NIOLockedValueBox(made)
        for entry in made.values { starts.continuation.yield(entry) }
    }

    /// What serves each route now, by route name.
    var services: [String: any RouteService] { entries.withLockedValue { $0.mapValues(\.service) } }

    /// Whether every worker pool the gateway runs itself has had an instance linked within
    /// `timeout`: the gateway accepts its first connection then (or after
    /// `GatewayServer.startTimeout`). A worker someone else runs (`worker.socket`) may come
    /// later, and is not waited for.
    func supervisedPoolsLinked(within timeout: TimeAmount) async -> Bool {
        let services = entries.withLockedValue { entries in
            entries.values.compactMap { entry -> (any RouteService)? in
                guard entry.pool != nil, case .worker(let settings) = entry.route.backend, settings.command != nil
                else { return nil }
                return entry.service
            }
        }
        let deadline = NIODeadline.now() + timeout
        for service in services {
            guard await service.ready(within: deadline - NIODeadline.now(), on: group.next()) else { return false }
        }
        return true
    }

    /// The worker pools in force (retiring ones are not listed).
    var pools: [WorkerPool] { entries.withLockedValue { $0.values.compactMap(\.pool) } }

    private static func make(
        _ route: RouteConfiguration,
        identities: ConnectionIdentities,
        group: any EventLoopGroup,
        logger: Logger,
        cluster: ClusterNode?
    ) throws -> Entry? {
        switch route.backend {
        case .static:
            return nil  // served by the HTTP side itself
        case .echo:
            return Entry(route: route, service: EchoRouteService())
        case .hub(let rules):
            let service = HubRouteService(rules: rules, hub: identities.hub)
            return Entry(route: route, service: service, hub: service)
        case .proxy(let settings):
            let proxy = ProxyRouteService(route: route, settings: settings, group: group, logger: logger)
            return Entry(route: route, service: proxy, proxy: proxy)
        case .worker(let settings):
            let pool = try WorkerPool(
                route: route,
                settings: settings,
                hub: identities.hub,
                group: group,
                logger: logger,
                remote: cluster,
                directory: identities.directory
            )
            return Entry(route: route, service: pool, pool: pool)
        case .http(let settings):
            let service = HTTPBackendRouteService(
                route: route,
                settings: settings,
                identities: identities,
                group: group,
                logger: logger,
                remote: cluster
            )
            return Entry(route: route, service: service, http: service)
        }
    }

    func run() async throws {
        let started = NIOLockedValueBox<[HTTPBackendRouteService]>([])
        await withDiscardingTaskGroup { tasks in
            for await entry in starts.stream.cancelOnGracefulShutdown() {
                if let pool = entry.pool { tasks.addTask { try? await pool.run() } }
                if let proxy = entry.proxy { tasks.addTask { try? await proxy.run() } }
                if let http = entry.http {
                    started.withLockedValue { $0.append(http) }
                    tasks.addTask { await cancelWhenGracefulShutdown { await http.watchApp() } }
                }
            }
        }
        // The server's drain has closed every client, and `http` routes now post their close
        // events (retired routes' too): the process must not end under them. Each event is
        // bounded by its route's timeout and retries; this waits for all of them.
        for http in started.withLockedValue({ $0 }) { await http.eventsPosted() }
    }

    /// Works out what a new route list changes and starts the new services (worker pools,
    /// proxy probes); waits up to `readyWithin` for each new service to be ready. Throws — after
    /// stopping what it started — when a pool cannot be made or does not come up in time.
    func prepare(_ routes: [RouteConfiguration], readyWithin: TimeAmount) async throws -> Plan {
        let current = entries.withLockedValue { $0 }
        var plan = Plan(entries: [:], fresh: [], retired: [], hubRules: [], summary: [])
        var keptNames: Set<String> = []
        do {
            for route in routes {
                if let existing = current[route.name], Self.canKeep(existing.route, for: route) {
                    Self.keep(existing, as: route, in: &plan)
                    keptNames.insert(route.name)
                    continue
                }
                if let existing = current[route.name], let pool = existing.pool,
                    let command = Self.deployableCommand(existing.route, for: route)
                {
                    try Self.deploy(command, on: pool, keeping: existing, as: route, in: &plan)
                    keptNames.insert(route.name)
                    continue
                }
                guard
                    let entry = try Self.make(
                        route,
                        identities: identities,
                        group: group,
                        logger: logger,
                        cluster: cluster
                    )
                else {
                    plan.summary.append(
                        current[route.name] == nil ? "routes.\(route.name) added" : "routes.\(route.name) changed"
                    )
                    continue
                }
                plan.fresh.append(entry)
                plan.entries[route.name] = entry
                plan.summary.append(
                    current[route.name] == nil
                        ? "routes.\(route.name) added"
                        : "routes.\(route.name) replaced (new \(route.kind.rawValue) service)"
                )
                starts.continuation.yield(entry)
            }
        } catch {
            abandon(plan)
            throw error
        }
        for (name, entry) in current where !keptNames.contains(name) {
            plan.retired.append(entry)
            if !routes.contains(where: { $0.name == name }) { plan.summary.append("routes.\(name) removed") }
        }
        // A new worker pool must be linked before it takes connections.
        let eventLoop = group.next()
        let deadline = NIODeadline.now() + readyWithin
        for entry in plan.fresh where entry.pool != nil {
            guard await entry.service.ready(within: deadline - NIODeadline.now(), on: eventLoop) else {
                abandon(plan)
                throw ReloadError(
                    code: .notReady,
                    "routes.\(entry.route.name): the new worker pool did not link within \(ValueParsing.format(readyWithin))"
                )
            }
        }
        return plan
    }

    /// A route that keeps its service: its new settings, and a hub route's new rules.
    private static func keep(_ existing: Entry, as route: RouteConfiguration, in plan: inout Plan) {
        var kept = existing
        kept.route = route
        if let hubService = existing.hub, case .hub(let rules) = route.backend, existing.route.backend != route.backend
        {
            plan.hubRules.append((hubService, rules))
            plan.summary.append("routes.\(route.name).hub rules changed")
        }
        if existing.route != route && existing.hub == nil {
            plan.summary.append("routes.\(route.name) changed")
        }
        plan.entries[route.name] = kept
    }

    /// A worker route whose program changed keeps its pool, which deploys the new program
    /// (one deploy at a time: a reload during one is refused).
    private static func deploy(
        _ command: WorkerProgram,
        on pool: WorkerPool,
        keeping existing: Entry,
        as route: RouteConfiguration,
        in plan: inout Plan
    ) throws {
        if let deployment = pool.status.deployment, deployment.inProgress {
            throw ReloadError(
                code: .deploying,
                "routes.\(route.name): deploy \(deployment.number) is still \(deployment.phase.rawValue)"
            )
        }
        var kept = existing
        kept.route = route
        plan.entries[route.name] = kept
        plan.deploys.append((pool, command))
        let old: WorkerProgram? = {
            if case .worker(let settings) = existing.route.backend { return settings.command }
            return nil
        }()
        let what = old.map { command.differences(from: $0) } ?? ["command"]
        plan.summary.append(
            "routes.\(route.name).worker \(what.joined(separator: ", ")) changed: rolling deploy (on_change: move)"
        )
    }

    /// A route keeps its service when what the service was built from is the same. Limits,
    /// origins, auth and the like are read per connection from the route table, not kept here.
    static func canKeep(_ old: RouteConfiguration, for new: RouteConfiguration) -> Bool {
        switch (old.backend, new.backend) {
        case (.static, .static), (.echo, .echo), (.hub, .hub): return true
        case (.worker(let before), .worker(let after)):
            return before == after && old.limits.maxMessageBytes == new.limits.maxMessageBytes
        case (.proxy(let before), .proxy(let after)): return before == after
        case (.http(let before), .http(let after)): return before == after
        default: return false
        }
    }

    /// The new command of a worker route whose pool moves its connections to it
    /// (`on_change: move`), when that is the only change.
    static func deployableCommand(_ old: RouteConfiguration, for new: RouteConfiguration) -> WorkerProgram? {
        guard case .worker(let before) = old.backend, case .worker(let after) = new.backend,
            old.limits.maxMessageBytes == new.limits.maxMessageBytes, before.command != after.command,
            before.movable(to: after)
        else { return nil }
        return after.command
    }

    /// Stops the services a plan started.
    func abandon(_ plan: Plan) {
        for entry in plan.fresh { Self.retire(entry) }
    }

    /// Puts a plan in force: the new services serve new connections, the old ones retire.
    func commit(_ plan: Plan) {
        entries.withLockedValue { $0 = plan.entries }
        for (service, rules) in plan.hubRules { service.update(rules: rules) }
        for entry in plan.retired { Self.retire(entry) }
        for (pool, command) in plan.deploys {
            do {
                _ = try pool.deploy(command)
            } catch {
                logger.error(
                    "rolling deploy not started",
                    metadata: ["route": .string(pool.route.name), "error": .string(error.description)]
                )
            }
        }
    }

    // MARK: RouteAdministration

    var workerRoutes: [WorkerRouteStatus] {
        pools.map(\.status).sorted { $0.route < $1.route }
    }

    func deploy(route: String, command: WorkerProgram?) throws(RouteAdministrationError) -> WorkerRouteStatus {
        guard let pool = entries.withLockedValue({ $0[route]?.pool }) else {
            throw RouteAdministrationError(.notFound, "no worker route named '\(route)'")
        }
        return try pool.deploy(command)
    }

    private static func retire(_ entry: Entry) {
        entry.pool?.retire()
        entry.proxy?.retire()
        entry.http?.retire()
    }
}

/// Why a reload was refused, beyond a configuration error.
struct ReloadError: Error, CustomStringConvertible {
    enum Code: String {
        case notReady = "not-ready"
        case bind
        /// A rolling deploy of the route is still running.
        case deploying
    }
    var code: Code
    var message: String
    init(code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    var description: String { message }
}

import GatewayAuth
import GatewayConfigLoader
import GatewayCore
import GatewayEdge
import GatewayLogging
import GatewayMetrics
import GatewayTLS
import GatewayWebSocket
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle
import Systemd
import UnixSignals

/// SIGHUP: read the configuration and certificates again and apply the difference without
/// touching an established connection:
/// - routes added, removed and changed serve new connections at once; a changed worker route
///   starts a new pool and the old one serves its connections until they close; connections on
///   a removed route go on (or are drained after `server.removed_route_grace`);
/// - listeners added are bound, removed ones drained, kept ones give new connections their new
///   certificates, HSTS and redirect;
/// - log level, format and redaction apply at once; limits and HTTP settings to new requests.
///
/// All or nothing: every certificate, key and new worker pool is loaded (and linked) and every
/// new address bound before anything changes; if one fails, what was started is stopped, the
/// error is logged, and everything stays as it was. Only what a running process truly cannot
/// change is refused (`restartOnlyChanges`).
struct ReloadService: Service, CustomStringConvertible {
    /// Service lifecycle logs services by description: never the loader's environment.
    var description: String { "ReloadService" }

    let loader: ConfigurationLoader
    let server: GatewayServer
    let routeServices: RouteServices
    /// The TLS side of each TLS listener, by name; a reload adds and replaces entries.
    let tls: NIOLockedValueBox<[String: ServerTLS]>
    let current: NIOLockedValueBox<GatewayConfiguration>
    let logSettings: LiveLogSettings
    let sessions: SessionDirectory
    let notifier: SystemdNotifier
    let logger: Logger
    let metrics: GatewayMetrics
    /// How long a new worker pool may take to link before the reload is refused.
    var poolReadyTimeout: TimeAmount = .seconds(10)

    /// Reloads asked for by the admin API (`POST /v1/reload`), each waiting for its outcome;
    /// SIGHUP asks through the same queue, so reloads never overlap.
    let requests: AsyncStream<CheckedContinuation<ReloadOutcome, Never>?>
    private let requester: AsyncStream<CheckedContinuation<ReloadOutcome, Never>?>.Continuation

    init(
        loader: ConfigurationLoader,
        server: GatewayServer,
        routeServices: RouteServices,
        tls: NIOLockedValueBox<[String: ServerTLS]>,
        current: NIOLockedValueBox<GatewayConfiguration>,
        logSettings: LiveLogSettings,
        sessions: SessionDirectory,
        notifier: SystemdNotifier,
        logger: Logger,
        metrics: GatewayMetrics
    ) {
        self.loader = loader
        self.server = server
        self.routeServices = routeServices
        self.tls = tls
        self.current = current
        self.logSettings = logSettings
        self.sessions = sessions
        self.notifier = notifier
        self.logger = logger
        self.metrics = metrics
        (requests, requester) = AsyncStream.makeStream(bufferingPolicy: .unbounded)
    }

    /// Reloads and answers what happened; after shutdown began, refuses at once.
    func request() async -> ReloadOutcome {
        await withCheckedContinuation { continuation in
            if case .terminated = requester.yield(continuation) {
                continuation.resume(returning: .refused("the gateway is stopping"))
            }
        }
    }

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        let requester = self.requester
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await _ in signals.cancelOnGracefulShutdown() { requester.yield(nil) }
                requester.finish()
            }
            for await waiting in requests {
                notifier.reloading()
                let outcome = await reload()
                metrics.reloaded(success: outcome.applied)
                notifier.notify("READY=1\nSTATUS=ready")
                waiting?.resume(returning: outcome)
            }
        }
    }

    /// What differs between two configurations that a running process cannot change: every key
    /// whose declaration (`ConfigKeys`) says `restart` — the number of event loops, the admin
    /// listener, the cluster link (whose node number is part of every connection id), and ACME
    /// (its manager holds orders and renewal timers for the listeners it started with).
    static func restartOnlyChanges(from old: GatewayConfiguration, to new: GatewayConfiguration) -> [String] {
        EffectiveConfiguration.restartOnlyChanges(from: old, to: new)
    }

    /// Everything a reload loads before it changes anything.
    private struct Prepared {
        var configuration: GatewayConfiguration
        var verifiers: [String: JWTVerifier]
        /// Running TLS listeners and what they switch to.
        var replacements: [(ServerTLS, CertificateMaterial, TLSSettings, String)] = []
        var tls: [String: ServerTLS] = [:]
    }

    private struct Refusal: Error {
        var outcome: ReloadOutcome
    }

    /// Loads, checks and puts in force the configuration, or changes nothing and says why.
    func reload() async -> ReloadOutcome {
        logger.info("reloading")
        let old = current.withLockedValue { $0 }
        let prepared: Prepared
        do {
            prepared = try await prepare(from: old)
        } catch {
            return error.outcome
        }
        let new = prepared.configuration
        // New worker pools start and link; new addresses are bound.
        let plan: RouteServices.Plan
        do {
            plan = try await routeServices.prepare(new.routes, readyWithin: poolReadyTimeout)
        } catch {
            return refuse("a route's new service does not start", error)
        }
        let listenerChange: GatewayServer.ListenerChange
        do {
            listenerChange = try await server.prepareListeners(new.listeners, tls: prepared.tls)
        } catch {
            routeServices.abandon(plan)
            return refuse("a listener cannot be bound", error)
        }
        await apply(prepared, plan: plan, listeners: listenerChange, old: old)
        let changes = Self.logChanges(from: old.log, to: new.log) + listenerChange.summary + plan.summary
        logger.info("reloaded", metadata: changes.isEmpty ? [:] : ["changes": .string(changes.joined(separator: "; "))])
        return .applied(changes)
    }

    /// The configuration, its token keys and its certificates, loaded and checked.
    private func prepare(from old: GatewayConfiguration) async throws(Refusal) -> Prepared {
        let new: GatewayConfiguration
        do {
            new = try await loader.load()
        } catch {
            throw Refusal(outcome: refuse("the configuration does not load", error))
        }
        let problems = Self.restartOnlyChanges(from: old, to: new)
        guard problems.isEmpty else {
            let reason = "these changes need a restart: \(problems.joined(separator: ", "))"
            logger.error(
                "reload refused: these changes need a restart; the running configuration stays",
                metadata: ["changes": .string(problems.joined(separator: ", "))]
            )
            throw Refusal(outcome: .refused(reason))
        }
        let verifiers: [String: JWTVerifier]
        do {
            verifiers = try await LiveSettings.verifiers(for: new.routes)
        } catch {
            throw Refusal(outcome: refuse("a token key does not load", error))
        }
        var prepared = Prepared(configuration: new, verifiers: verifiers)
        let running = tls.withLockedValue { $0 }
        for listener in new.listeners {
            guard let settings = listener.tls else { continue }
            let oldSettings = old.listeners.first { $0.name == listener.name }?.tls
            do {
                if let serverTLS = running[listener.name], oldSettings != nil {
                    let material: CertificateMaterial
                    if case .selfSigned = settings.source, oldSettings == settings {
                        material = serverTLS.material  // a generated certificate stays the same
                    } else if settings.acme != nil {
                        material = serverTLS.material  // the ACME manager decides what is served
                    } else {
                        material = try ServerTLS.material(for: settings)
                    }
                    _ = try ServerTLS.makeContext(material: material, settings: settings)
                    prepared.replacements.append((serverTLS, material, settings, listener.name))
                    prepared.tls[listener.name] = serverTLS
                } else {
                    // A listener that is new, or has just turned TLS on.
                    prepared.tls[listener.name] = try ServerTLS(
                        material: try ServerTLS.material(for: settings),
                        settings: settings
                    )
                }
            } catch {
                logger.error(
                    "reload refused: a certificate does not load; the running ones stay",
                    metadata: ["listener": .string(listener.name), "error": .string("\(error)")]
                )
                throw Refusal(outcome: .refused("listeners.\(listener.name): a certificate does not load: \(error)"))
            }
        }
        return prepared
    }

    /// Puts a prepared reload in force.
    private func apply(
        _ prepared: Prepared,
        plan: RouteServices.Plan,
        listeners listenerChange: GatewayServer.ListenerChange,
        old: GatewayConfiguration
    ) async {
        let new = prepared.configuration
        for (serverTLS, material, settings, name) in prepared.replacements {
            do {
                try serverTLS.replace(material: material, settings: settings)
            } catch {
                // makeContext succeeded a moment ago with the same inputs; report and go on.
                logger.error(
                    "certificate swap failed",
                    metadata: ["listener": .string(name), "error": .string("\(error)")]
                )
            }
            logger.info(
                "certificate",
                metadata: [
                    "listener": .string(name), "sha256": .string(material.fingerprint),
                    "subject": .string(material.subject),
                ]
            )
        }
        tls.withLockedValue { $0 = prepared.tls }
        let log = CommandLog.settings(new.log)
        logSettings.update(level: log.level, format: log.format, redactor: log.redactor)
        server.live.replace(routes: new.routes, http: new.http, verifiers: prepared.verifiers, services: plan.services)
        server.limiter.update(new.limits)
        routeServices.commit(plan)
        await server.commit(listenerChange, server: new.server)
        current.withLockedValue { $0 = new }
        let removed = old.routes.map(\.name).filter { name in !new.routes.contains { $0.name == name } }
        if let grace = new.server.removedRouteGrace, !removed.isEmpty {
            scheduleDrain(of: removed, after: grace)
        }
    }

    /// The log section's changes, as the reload line lists them.
    static func logChanges(from old: LogSettings, to new: LogSettings) -> [String] {
        var changes: [String] = []
        if old.level != new.level { changes.append("log.level \(old.level.rawValue) → \(new.level.rawValue)") }
        if old.format != new.format { changes.append("log.format \(old.format.rawValue) → \(new.format.rawValue)") }
        if old.redactParameters != new.redactParameters { changes.append("log.redact_parameters changed") }
        return changes
    }

    private func refuse(_ what: String, _ error: any Error) -> ReloadOutcome {
        logger.error(
            "reload refused: \(what); the running configuration stays",
            metadata: ["error": .string("\(error)")]
        )
        return .refused("\(what): \(error)")
    }

    /// Connections of removed routes get 1001 once the grace is over — unless a later reload
    /// has brought the route back.
    private func scheduleDrain(of routes: [String], after grace: TimeAmount) {
        let current = self.current
        let sessions = self.sessions
        let logger = self.logger
        Task {
            try? await Task.sleep(nanoseconds: UInt64(max(grace.nanoseconds, 0)))
            let stillGone = routes.filter { name in !current.withLockedValue { $0.routes.contains { $0.name == name } }
            }
            guard !stillGone.isEmpty else { return }
            let count = sessions.quiesce(routes: Set(stillGone))
            logger.info(
                "removed routes drained",
                metadata: [
                    "routes": .string(stillGone.joined(separator: ", ")), "connections": .stringConvertible(count),
                ]
            )
        }
    }
}

extension RouteServices.Plan {
    var services: [String: any RouteService] { entries.mapValues(\.service) }
}

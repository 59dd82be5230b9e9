import GatewayConfigLoader
import GatewayAuth
import GatewayCore
import GatewayMetrics
import GatewayEdge
import GatewayTLS
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import Systemd
import UnixSignals

/// SIGHUP: read the configuration and certificates again and apply them without dropping a
/// connection — new handshakes present the new certificate, new connections follow the new
/// routes and HTTP limits. All or nothing: a configuration or certificate that does not load,
/// or a change that cannot take effect in a running process, is refused with a logged error and
/// everything stays as it was.
struct ReloadService: Service, CustomStringConvertible {
    /// Service lifecycle logs services by description: never the loader's environment.
    var description: String { "ReloadService" }

    let loader: ConfigurationLoader
    let server: GatewayServer
    let tls: [String: ServerTLS]
    let current: NIOLockedValueBox<GatewayConfiguration>
    let notifier: SystemdNotifier
    let logger: Logger
    let metrics: GatewayMetrics

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            notifier.reloading()
            metrics.reloaded(success: await reload())
            notifier.notify("READY=1\nSTATUS=ready")
        }
    }

    /// What differs between two configurations that only a restart can change.
    static func restartOnlyChanges(from old: GatewayConfiguration, to new: GatewayConfiguration) -> [String] {
        var problems: [String] = []
        if old.log != new.log { problems.append("log") }
        if old.server != new.server { problems.append("server") }
        let oldListeners = old.listeners.map { ($0.name, $0.address, $0.tls != nil) }
        let newListeners = new.listeners.map { ($0.name, $0.address, $0.tls != nil) }
        if !oldListeners.elementsEqual(newListeners, by: { $0 == $1 }) {
            problems.append("listeners (names, addresses, TLS on or off)")
        }
        let oldFront = old.listeners.map { ($0.name, $0.redirectHTTPSPort, $0.tls?.hsts) }
        let newFront = new.listeners.map { ($0.name, $0.redirectHTTPSPort, $0.tls?.hsts) }
        if !oldFront.elementsEqual(newFront, by: { $0 == $1 }) {
            problems.append("listeners (redirect_https, tls.hsts)")
        }
        if old.listeners.map(\.tls?.acme) != new.listeners.map(\.tls?.acme) {
            problems.append("listeners (tls.acme)")
        }
        if old.admin != new.admin {
            problems.append("admin (address or token)")
        }
        if old.cluster != new.cluster {
            problems.append("cluster")
        }
        let oldRoutes = Dictionary(uniqueKeysWithValues: old.routes.map { ($0.name, $0) })
        for route in new.routes {
            guard let before = oldRoutes[route.name] else {
                problems.append("routes.\(route.name) (a new route)")
                continue
            }
            if before.kind != route.kind { problems.append("routes.\(route.name).kind") }
            if before.worker != route.worker { problems.append("routes.\(route.name).worker") }
            if before.proxy != route.proxy { problems.append("routes.\(route.name).proxy") }
            if before.hub != route.hub { problems.append("routes.\(route.name).hub") }
        }
        for name in oldRoutes.keys where !new.routes.contains(where: { $0.name == name }) {
            problems.append("routes.\(name) (removed)")
        }
        return problems
    }

    /// Returns whether the new configuration is in force.
    @discardableResult
    func reload() async -> Bool {
        logger.info("reloading")
        let old = current.withLockedValue { $0 }
        let new: GatewayConfiguration
        do {
            new = try await loader.load()
        } catch {
            logger.error("reload refused: the running configuration stays", metadata: ["error": .string("\(error)")])
            return false
        }
        let problems = Self.restartOnlyChanges(from: old, to: new)
        guard problems.isEmpty else {
            logger.error("reload refused: these changes need a restart; the running configuration stays", metadata: ["changes": .string(problems.joined(separator: ", "))])
            return false
        }
        // Load every key and certificate before changing anything.
        let verifiers: [String: JWTVerifier]
        do {
            verifiers = try await LiveSettings.verifiers(for: new.routes)
        } catch {
            logger.error("reload refused: a token key does not load; the running configuration stays", metadata: ["error": .string("\(error)")])
            return false
        }
        var replacements: [(ServerTLS, CertificateMaterial, TLSSettings, String)] = []
        for listener in new.listeners {
            guard let settings = listener.tls, let serverTLS = tls[listener.name] else { continue }
            let oldSettings = old.listeners.first { $0.name == listener.name }?.tls
            do {
                let material: CertificateMaterial
                if case .selfSigned = settings.source, oldSettings == settings {
                    material = serverTLS.material  // a generated certificate stays the same
                } else if settings.acme != nil {
                    material = serverTLS.material  // the ACME manager decides what is served
                } else {
                    material = try ServerTLS.material(for: settings)
                }
                _ = try ServerTLS.makeContext(material: material, settings: settings)
                replacements.append((serverTLS, material, settings, listener.name))
            } catch {
                logger.error("reload refused: a certificate does not load; the running ones stay", metadata: [
                    "listener": .string(listener.name), "error": .string("\(error)"),
                ])
                return false
            }
        }
        for (serverTLS, material, settings, name) in replacements {
            do {
                try serverTLS.replace(material: material, settings: settings)
            } catch {
                // makeContext succeeded a moment ago with the same inputs; report and go on.
                logger.error("certificate swap failed", metadata: ["listener": .string(name), "error": .string("\(error)")])
            }
            logger.info("certificate", metadata: ["listener": .string(name), "sha256": .string(material.fingerprint), "subject": .string(material.subject)])
        }
        server.live.replace(routes: new.routes, http: new.http, verifiers: verifiers)
        server.limiter.update(new.limits)
        current.withLockedValue { $0 = new }
        logger.info("reloaded")
        return true
    }
}

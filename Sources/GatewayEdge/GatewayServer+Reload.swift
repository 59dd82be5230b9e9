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

/// A reload's listeners: bound beside the running ones, then put in force or given up.
extension GatewayServer {
    /// A reload's listeners: what to bind, what to drain, what changes in place.
    public struct ListenerChange: Sendable {
        /// Listeners bound and waiting to be committed.
        var bound: [(name: String, listener: Listener)] = []
        var kept: [(Listener, Listener.Settings)] = []
        var removed: [Listener] = []
        var order: [String] = []
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
        startAccepting(change.bound.map(\.listener))
        await closeListeners(change.removed)
        for listener in change.removed { connections.quiesce(listener: listener.serial) }
    }
}

import GatewayCore
import NIOConcurrencyHelpers
import NIOCore

/// What `/readyz` reports, and the live figures of the process.
public final class GatewayState: Sendable {
    public enum Phase: String, Sendable { case starting, ready, draining }

    private struct Values {
        var phase = Phase.starting
        var bound = false
        /// What must be up before the gateway serves is up (`GatewayServer.Hooks.started`).
        var started = false
        var httpConnections = 0
        var webSocketSessions = 0
        var tlsHandshakeFailures = 0
        var refusedRequests: [Int: Int] = [:]
    }
    private let values = NIOLockedValueBox(Values())
    private let serving = Latch()
    private let degradationCheck = NIOLockedValueBox<@Sendable () -> Degradation?>({ nil })
    private let routeDegradations = NIOLockedValueBox<@Sendable () -> [String]>({ [] })

    /// Serving, but with a part missing (the cluster link): `/readyz` names it, and answers 503
    /// only when the operator chose so (`cluster.degraded_readiness: unready`).
    public struct Degradation: Sendable, Equatable {
        public var reason: String
        public var blocksReadiness: Bool
        public init(reason: String, blocksReadiness: Bool) {
            self.reason = reason
            self.blocksReadiness = blocksReadiness
        }
    }

    public func setDegradationCheck(_ check: @escaping @Sendable () -> Degradation?) {
        degradationCheck.withLockedValue { $0 = check }
    }

    /// The routes that serve with something missing (`RouteService.degradation`), each named.
    /// They never block readiness: one dead upstream must not take every other route out of a
    /// load balancer.
    public func setRouteDegradations(_ check: @escaping @Sendable () -> [String]) {
        routeDegradations.withLockedValue { $0 = check }
    }

    /// What is missing now, if anything: the process-wide check's reasons, then the routes'.
    public var degradation: Degradation? {
        let general = degradationCheck.withLockedValue { $0 }()
        let routes = routeDegradations.withLockedValue { $0 }()
        guard !routes.isEmpty else { return general }
        let reasons = (general.map { [$0.reason] } ?? []) + routes
        return Degradation(
            reason: reasons.joined(separator: "; "),
            blocksReadiness: general?.blocksReadiness ?? false
        )
    }

    /// What `/readyz` reports: starting until the gateway can serve, ready, then draining. It
    /// can serve once its listeners are bound and the start gate is open (its own worker pools
    /// linked): the listeners then accept within a moment, and what queued meanwhile is served.
    public var readiness: Phase {
        let phase = self.phase
        let (bound, started) = values.withLockedValue { ($0.bound, $0.started) }
        guard phase == .starting, bound else { return phase }
        return started ? .ready : .starting
    }

    /// What must be up before the gateway serves is up (`GatewayServer.Hooks.started`).
    func startGateOpened() { values.withLockedValue { $0.started = true } }

    /// Every listener is bound (and waits for the start gate to accept).
    func listenersBound() { values.withLockedValue { $0.bound = true } }

    public init() {}

    public var phase: Phase {
        get { values.withLockedValue { $0.phase } }
    }

    public func setPhase(_ phase: Phase) {
        values.withLockedValue { $0.phase = phase }
        if phase != .starting { serving.open() }
    }

    /// Returns once the gateway serves (its listeners accept): true, or false when the
    /// waiting task was cancelled first.
    public func serves(on eventLoop: any EventLoop) async -> Bool {
        await serving.opens(within: nil, on: eventLoop)
    }

    public var webSocketSessions: Int { values.withLockedValue { $0.webSocketSessions } }
    public var httpConnections: Int { values.withLockedValue { $0.httpConnections } }
    public var tlsHandshakeFailures: Int { values.withLockedValue { $0.tlsHandshakeFailures } }
    /// Refused requests by HTTP status (4xx/5xx answered by the gateway itself).
    public var refusedRequests: [Int: Int] { values.withLockedValue { $0.refusedRequests } }

    func connectionOpened() { values.withLockedValue { $0.httpConnections += 1 } }
    func connectionClosed() { values.withLockedValue { $0.httpConnections -= 1 } }
    func sessionOpened() { values.withLockedValue { $0.webSocketSessions += 1 } }
    func sessionClosed() { values.withLockedValue { $0.webSocketSessions -= 1 } }
    func tlsHandshakeFailed() { values.withLockedValue { $0.tlsHandshakeFailures += 1 } }
    func refused(status: Int) { values.withLockedValue { $0.refusedRequests[status, default: 0] += 1 } }
}

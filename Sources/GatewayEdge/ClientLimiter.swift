import GatewayCore
import NIOConcurrencyHelpers
import NIOCore

/// Counts WebSocket connections overall and per client address, and meters how fast each
/// address opens them (a token bucket), so one client cannot take the gateway for itself.
/// Consulted once per upgrade, never per message.
public final class ClientLimiter: Sendable {
    public enum Verdict: Equatable, Sendable {
        case admitted
        /// 503: the gateway (`overall`) or this address holds as many connections as allowed.
        case full(overall: Bool)
        /// 429: this address opens connections too fast; it may try again after this long.
        case tooFast(retryAfterSeconds: Int)
    }

    private struct Client {
        var active = 0
        var bucket: TokenBucket
    }

    private struct State {
        var settings: LimitSettings
        var total = 0
        var clients: [[UInt8]: Client] = [:]
    }

    private let state: NIOLockedValueBox<State>

    public init(settings: LimitSettings) {
        state = NIOLockedValueBox(State(settings: settings))
    }

    /// Peers allowed to name the client (`limits.trusted_proxies`).
    public var trustedProxies: [IPNetwork] { state.withLockedValue { $0.settings.trustedProxies } }

    /// A reload's new limits; connections already open stay.
    public func update(_ settings: LimitSettings) {
        state.withLockedValue { $0.settings = settings }
    }

    /// Asks for a connection slot for `address` (4 or 16 bytes; nil for Unix-socket peers, which
    /// only the overall limit applies to). An admitted slot must be given back with `release`.
    public func admit(_ address: [UInt8]?, now: NIODeadline = .now()) -> Verdict {
        state.withLockedValue { state in
            let settings = state.settings
            if settings.maxConnections > 0, state.total >= settings.maxConnections {
                return .full(overall: true)
            }
            guard let address else {
                state.total += 1
                return .admitted
            }
            var client =
                state.clients[address]
                ?? Client(
                    bucket: TokenBucket(
                        rate: settings.connectionsPerSecondPerIP,
                        burst: Double(settings.connectionBurstPerIP),
                        now: now
                    )
                )
            // A reload's new rates apply to buckets already made.
            client.bucket.rate = settings.connectionsPerSecondPerIP
            client.bucket.burst = Double(settings.connectionBurstPerIP)
            if settings.maxConnectionsPerIP > 0, client.active >= settings.maxConnectionsPerIP {
                return .full(overall: false)
            }
            guard client.bucket.take(now: now) else {
                state.clients[address] = client
                let wait = Double(client.bucket.wait(now: now).nanoseconds) / 1e9
                return .tooFast(retryAfterSeconds: max(1, Int(wait.rounded(.up))))
            }
            client.active += 1
            state.total += 1
            state.clients[address] = client
            if state.clients.count > 4096 { Self.prune(&state, now: now) }
            return .admitted
        }
    }

    public func release(_ address: [UInt8]?) {
        state.withLockedValue { state in
            state.total -= 1
            guard let address, var client = state.clients[address] else { return }
            client.active -= 1
            state.clients[address] = client
        }
    }

    /// Open connections: overall, and of one address.
    public func count(_ address: [UInt8]? = nil) -> Int {
        state.withLockedValue { state in
            guard let address else { return state.total }
            return state.clients[address]?.active ?? 0
        }
    }

    /// Forgets addresses with no connection whose bucket has refilled: they are as new.
    private static func prune(_ state: inout State, now: NIODeadline) {
        state.clients = state.clients.filter { _, client in
            client.active > 0 || !client.bucket.isFull(now: now)
        }
    }
}

import Synchronization

/// Whether what a route forwards to — a proxy's upstream, an `http` route's app — accepted the
/// last connection the gateway made to it. Unknown until the first attempt.
///
/// A route whose peer is down still serves (its clients get the route's refusal, the other
/// routes carry on), so it makes the gateway *degraded*, not unready: `/readyz` says so and the
/// admin API's `/v1/status` names the route and the peer, and the log says it when it changes.
public final class Reachability: Sendable {
    private let state = Mutex<Bool?>(nil)

    public init() {}

    /// Records an attempt. Returns the new state when it is news: a change, or a first attempt
    /// that failed (a peer that is down from the start is worth a line too).
    public func record(reachable: Bool) -> Bool? {
        state.withLock { state -> Bool? in
            defer { state = reachable }
            switch state {
            case nil: return reachable ? nil : false
            case let before?: return before == reachable ? nil : reachable
            }
        }
    }

    /// Whether the last attempt failed (false while unknown).
    public var isDown: Bool { state.withLock { $0 == false } }

    /// Whether the last attempt succeeded (false while unknown).
    public var isUp: Bool { state.withLock { $0 == true } }
}

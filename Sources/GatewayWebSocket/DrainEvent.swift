/// Tells a session (or a proxied connection) to go: it closes with 1001 Going Away at a random
/// moment within the drain spread, with a reason a client can act on. Shutting down sends NIO's
/// `ChannelShouldQuiesceEvent`, which means `restart`; a reload that removes the connection's
/// route or listener sends this with `drain`.
public struct DrainEvent: Sendable {
    /// The 1001 close's reason.
    public enum Reason: UInt8, Sendable {
        /// The gateway is stopping (a restart, a deploy): connect again, here or elsewhere.
        case restart
        /// This route or listener is gone from this gateway after a reload: connect again
        /// (another path may serve it now, or another gateway).
        case drain

        public var text: String {
            switch self {
            case .restart: "restart"
            case .drain: "drain"
            }
        }
    }

    public let reason: Reason

    public init(reason: Reason) { self.reason = reason }
}

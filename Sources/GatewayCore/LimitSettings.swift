/// Limits on clients, across routes: how many WebSockets the gateway and each client address may
/// hold, and how fast an address may open them. Zero turns a limit off.
public struct LimitSettings: Sendable, Equatable {
    /// WebSocket connections open at once, all routes; past it an upgrade gets 503.
    public var maxConnections: Int
    /// The same, per client address; past it 503.
    public var maxConnectionsPerIP: Int
    /// Upgrades per second a client address may start (a token bucket); past it 429.
    public var connectionsPerSecondPerIP: Double
    /// How many upgrades an address may start at once before the rate applies.
    public var connectionBurstPerIP: Int
    /// Peers whose `Forwarded` / `X-Forwarded-For` name the real client (a load balancer in
    /// front of the gateway); from anyone else those headers are ignored.
    public var trustedProxies: [IPNetwork]

    public init(
        maxConnections: Int = 0,
        maxConnectionsPerIP: Int = 0,
        connectionsPerSecondPerIP: Double = 0,
        connectionBurstPerIP: Int = 20,
        trustedProxies: [IPNetwork] = []
    ) {
        self.maxConnections = maxConnections
        self.maxConnectionsPerIP = maxConnectionsPerIP
        self.connectionsPerSecondPerIP = connectionsPerSecondPerIP
        self.connectionBurstPerIP = connectionBurstPerIP
        self.trustedProxies = trustedProxies
    }
}

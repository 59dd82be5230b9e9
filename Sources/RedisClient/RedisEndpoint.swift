/// Where Redis is and who to be there: the parts of a `redis://` or `unix:` address (the
/// gateway's configuration parses those, as `RedisAddress`).
public struct RedisEndpoint: Sendable, Equatable, CustomStringConvertible {
    public enum Address: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    public var address: Address
    public var database: Int
    public var user: String?
    public var password: String?

    public init(address: Address, database: Int = 0, user: String? = nil, password: String? = nil) {
        self.address = address
        self.database = database
        self.user = user
        self.password = password
    }

    /// Without credentials: safe for logs.
    public var description: String {
        switch address {
        case .tcp(let host, let port): return "redis://\(host.contains(":") ? "[\(host)]" : host):\(port)/\(database)"
        case .unix(let path): return "unix:\(path)?db=\(database)"
        }
    }
}

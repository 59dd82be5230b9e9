/// Where Redis is, as the configuration names it: `redis://[user:password@]host[:port][/db]` or
/// `unix:/path/to/redis.sock` (`unix:/path?db=N&user=U&password=P` for the rest). A value of the
/// configuration model: the loader checks it and prints it redacted without knowing the Redis
/// client, which gets the parts (`RedisEndpoint`).
public struct RedisAddress: Sendable, Equatable, CustomStringConvertible {
    public enum Location: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    public var location: Location
    public var database: Int
    public var user: String?
    public var password: String?

    public init(location: Location, database: Int = 0, user: String? = nil, password: String? = nil) {
        self.location = location
        self.database = database
        self.user = user
        self.password = password
    }

    public init(parsing text: String) throws(ConfigurationError) {
        func bad(_ why: String) -> ConfigurationError {
            ConfigurationError(.invalidValue, key: "cluster.redis", "'\(Self.redacted(text))': \(why)")
        }
        if text.hasPrefix("unix:") {
            var rest = Substring(text.dropFirst(5))
            var database = 0
            var user: String?
            var password: String?
            if let question = rest.firstIndex(of: "?") {
                for pair in rest[rest.index(after: question)...].split(separator: "&") {
                    let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                    guard parts.count == 2 else { throw bad("query parameter '\(parts[0])' has no value") }
                    switch parts[0] {
                    case "db":
                        guard let value = Int(parts[1]), value >= 0 else { throw bad("db is a number") }
                        database = value
                    case "user": user = parts[1]
                    case "password": password = parts[1]
                    default: throw bad("unknown parameter '\(parts[0])' (db, user, password)")
                    }
                }
                rest = rest[..<question]
            }
            guard rest.hasPrefix("/") else { throw bad("a unix socket path is absolute") }
            self.init(location: .unix(path: String(rest)), database: database, user: user, password: password)
            return
        }
        guard text.hasPrefix("redis://") else { throw bad("use redis://host:port/db or unix:/path") }
        var rest = Substring(text.dropFirst(8))
        var user: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let name = String(credentials[..<colon])
                user = name.isEmpty ? nil : name
                password = String(credentials[credentials.index(after: colon)...])
            } else {
                password = String(credentials)
            }
        }
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            if !path.isEmpty {
                guard let value = Int(path), value >= 0 else { throw bad("the database after / is a number") }
                database = value
            }
            rest = rest[..<slash]
        }
        var host = String(rest)
        var port = 6379
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw bad("unclosed [ in the host") }
            let after = host[host.index(after: close)...]
            if after.hasPrefix(":") {
                guard let value = Int(after.dropFirst()), (1...65535).contains(value) else {
                    throw bad("port is 1 to 65535")
                }
                port = value
            }
            host = String(host[host.index(after: host.startIndex)..<close])
        } else if let colon = host.lastIndex(of: ":") {
            guard let value = Int(host[host.index(after: colon)...]), (1...65535).contains(value) else {
                throw bad("port is 1 to 65535")
            }
            port = value
            host = String(host[..<colon])
        }
        guard !host.isEmpty else { throw bad("no host") }
        self.init(location: .tcp(host: host, port: port), database: database, user: user, password: password)
    }

    /// The address with any password replaced, for logs and errors.
    public static func redacted(_ text: String) -> String {
        guard text.hasPrefix("redis://"), let at = text.lastIndex(of: "@") else {
            // unix:/path?…&password=secret&…
            var parts = text.split(separator: "&", omittingEmptySubsequences: false).map(String.init)
            for index in parts.indices {
                if let marker = parts[index].firstIndex(of: "="), parts[index][..<marker].hasSuffix("password") {
                    parts[index] = parts[index][...marker] + "***"
                }
            }
            return parts.joined(separator: "&")
        }
        let credentials = text[text.index(text.startIndex, offsetBy: 8)..<at]
        guard let colon = credentials.firstIndex(of: ":") else { return "redis://***" + text[at...] }
        return "redis://" + credentials[..<colon] + ":***" + text[at...]
    }

    /// Without credentials: safe for logs.
    public var description: String {
        switch location {
        case .tcp(let host, let port): return "redis://\(host.contains(":") ? "[\(host)]" : host):\(port)/\(database)"
        case .unix(let path): return "unix:\(path)?db=\(database)"
        }
    }
}

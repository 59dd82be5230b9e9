import Configuration
import GatewayCore
import NIOCore
import NIOWebSocket

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reads every known key through swift-configuration and turns the strings into typed values.
/// Every value is read as a string and parsed here, so a value of the wrong type stops the load
/// with its key named rather than being replaced by a default. Each key's default and range
/// come from its declaration (`ConfigKeys`); the rules between keys are here.
struct ConfigurationBuilder {
    let reader: ConfigReader
    let names: [String: [String]]
    /// Where privileged copies of secret files are, if anywhere.
    var credentials = CredentialFiles(directory: nil)

    func build() throws(ConfigurationError) -> GatewayConfiguration {
        let log = LogSettings(
            level: try choice(["log", "level"]),
            format: try choice(["log", "format"]),
            redactParameters: listOrDefault(["log", "redact_parameters"])
        )
        let server = ServerSettings(
            threads: try integer(["server", "threads"]),
            drainTimeout: try duration(["server", "drain_timeout"]),
            drainSpread: try duration(["server", "drain_spread"]),
            removedRouteGrace: try optionalDuration(["server", "removed_route_grace"])
        )
        guard server.drainSpread < server.drainTimeout else {
            throw ConfigurationError(
                .invalidValue,
                key: "server.drain_spread",
                "must be shorter than server.drain_timeout"
            )
        }
        let http = HTTPSettings(
            maxHeaderBytes: try bytes(["http", "max_header_bytes"]),
            headerTimeout: try duration(["http", "header_timeout"]),
            idleTimeout: try duration(["http", "idle_timeout"])
        )

        let (listeners, addresses) = try listenersSection()

        let routes = try routesSection()
        let trusted = try networks(list(["limits", "trusted_proxies"]) ?? [], key: ["limits", "trusted_proxies"])
        let limits = LimitSettings(
            maxConnections: try integer(["limits", "max_connections"]),
            maxConnectionsPerIP: try integer(["limits", "max_connections_per_ip"]),
            connectionsPerSecondPerIP: try rate(["limits", "connections_per_second_per_ip"]),
            connectionBurstPerIP: try integer(["limits", "connection_burst_per_ip"]),
            trustedProxies: trusted
        )
        let admin = try self.admin()
        if let adminAddress = admin.address, let clash = addresses[adminAddress] {
            throw ConfigurationError(
                .duplicate,
                key: "admin.address",
                "\(adminAddress) is also the address of listeners.\(clash)"
            )
        }
        return GatewayConfiguration(
            log: log,
            server: server,
            http: http,
            listeners: listeners,
            routes: routes,
            admin: admin,
            limits: limits,
            cluster: try cluster()
        )
    }

    /// Every listener, each at an address of its own (but port 0), and who has which address.
    private func listenersSection() throws(ConfigurationError) -> ([ListenerConfiguration], [ListenAddress: String]) {
        var listeners: [ListenerConfiguration] = []
        var addresses: [ListenAddress: String] = [:]
        for name in names["listeners"] ?? [] {
            let listener = try self.listener(name)
            // Port 0 asks the system for a free port: two of those never collide.
            if case .tcp(_, 0) = listener.address {
                listeners.append(listener)
                continue
            }
            if let other = addresses[listener.address] {
                throw ConfigurationError(
                    .duplicate,
                    key: "listeners.\(name).address",
                    "\(listener.address) is also the address of listeners.\(other)"
                )
            }
            addresses[listener.address] = name
            listeners.append(listener)
        }
        guard !listeners.isEmpty else {
            throw ConfigurationError(.missingValue, key: "listeners", "at least one listener is needed")
        }
        return (listeners, addresses)
    }

    /// Every route, each at a path of its own.
    private func routesSection() throws(ConfigurationError) -> [RouteConfiguration] {
        var routes: [RouteConfiguration] = []
        var paths: [String: String] = [:]
        for name in names["routes"] ?? [] {
            let route = try self.route(name)
            if let other = paths[route.path] {
                throw ConfigurationError(
                    .duplicate,
                    key: "routes.\(name).path",
                    "path \(route.path) is also the path of routes.\(other)"
                )
            }
            paths[route.path] = name
            routes.append(route)
        }
        return routes
    }

    /// `cluster:` (docs/cluster.md): nil unless `cluster.redis` is set.
    func cluster() throws(ConfigurationError) -> ClusterSettings? {
        guard let redis = string(["cluster", "redis"]) else {
            for key in ConfigKeys.cluster.nodes.map(\.name) where key != "redis" && string(["cluster", key]) != nil {
                throw ConfigurationError(
                    .missingValue,
                    key: "cluster.redis",
                    "cluster.\(key) is set but cluster.redis is not: name the Redis server (redis://host:port/db or unix:/path)"
                )
            }
            return nil
        }
        _ = try RedisAddress(parsing: redis)
        let node = string(["cluster", "node"]) ?? Self.hostName()
        guard ClusterSettings.isValidNodeName(node) else {
            throw ConfigurationError(
                .invalidValue,
                key: "cluster.node",
                "'\(node)' is not a node name: 1 to 64 letters, digits, '-', '.' or '_'"
            )
        }
        let number = try optionalInteger(["cluster", "node_number"])
        let prefix = stringOrDefault(["cluster", "prefix"])
        guard ClusterSettings.isValidNodeName(prefix) else {
            throw ConfigurationError(
                .invalidValue,
                key: "cluster.prefix",
                "'\(prefix)' is not a key prefix: 1 to 64 letters, digits, '-', '.' or '_'"
            )
        }
        return ClusterSettings(
            redis: redis,
            node: node,
            nodeNumber: number,
            presenceTTL: try duration(["cluster", "presence_ttl"]),
            degradedReadiness: try choice(["cluster", "degraded_readiness"]),
            requestTimeout: try duration(["cluster", "request_timeout"]),
            prefix: prefix
        )
    }

    /// The machine's name: a node's default name in a cluster.
    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "wssgate" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return ClusterSettings.isValidNodeName(name) ? name : "wssgate"
    }

    /// A secret as check-config printed it (`[redacted]`) stands for one nobody knows: the
    /// configuration still loads and runs, and refuses every token or request that needs it,
    /// rather than failing open or not starting. Any other value is the secret itself.
    static func unredacted(_ secret: String) -> String {
        guard secret == EffectiveConfiguration.redacted else { return secret }
        // 48 hex digits from the system's secure generator: long enough for every secret's rule.
        let digits = Array("0123456789abcdef")
        return String((0..<48).map { _ in digits.randomElement()! })
    }

    func admin() throws(ConfigurationError) -> AdminSettings {
        var settings = AdminSettings()
        if let text = string(["admin", "address"]) {
            settings.isExplicit = true
            if text == "off" {
                settings.address = nil
            } else {
                do {
                    settings.address = try ListenAddress(parsing: text)
                } catch {
                    throw error.at("admin.address")
                }
                if case .systemd = settings.address {
                    throw ConfigurationError(
                        .invalidValue,
                        key: "admin.address",
                        "the admin API binds its own socket: use host:port or unix:/path"
                    )
                }
            }
        }
        let inline = string(["admin", "token"])
        let file = string(["admin", "token_file"])
        switch (inline, file) {
        case (.some, .some):
            throw ConfigurationError(.invalidValue, key: "admin.token_file", "use either token or token_file, not both")
        case (let token?, nil):
            settings.token = Self.unredacted(token)
        case (nil, let path?):
            settings.tokenFile = path
            let contents: String
            do {
                contents = try ConfigurationLoader.readFile(path)
            } catch {
                throw error.at("admin.token_file")
            }
            settings.token = contents.trimmingCharacters(in: "\n").trimmingCharacters(in: " ")
        case (nil, nil):
            break
        }
        let tokenKey = file == nil ? "admin.token" : "admin.token_file"
        if let token = settings.token {
            guard token.utf8.count >= AdminSettings.minimumTokenLength else {
                throw ConfigurationError(
                    .invalidValue,
                    key: tokenKey,
                    "a token must be at least \(AdminSettings.minimumTokenLength) characters"
                )
            }
            guard token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw ConfigurationError(.invalidValue, key: tokenKey, "a token is printable ASCII without spaces")
            }
        }
        if case .tcp = settings.address, settings.token == nil {
            throw ConfigurationError(
                .missingValue,
                key: "admin.token",
                "the admin API on TCP needs a bearer token (admin.token or admin.token_file)"
            )
        }
        return settings
    }
}

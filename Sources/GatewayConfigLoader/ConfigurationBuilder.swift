import Configuration
import GatewayCore
import NIOCore
import NIOWebSocket
import RedisClient

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

    /// `cluster:` (docs/cluster.md): nil unless `cluster.redis` is set.
    private func cluster() throws(ConfigurationError) -> ClusterSettings? {
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
        do {
            _ = try RedisEndpoint(parsing: redis)
        } catch {
            throw ConfigurationError(.invalidValue, key: "cluster.redis", error.message)
        }
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

    /// A route's `auth` section, key files read; nil when the route has none.
    private func auth(_ base: [String]) throws(ConfigurationError) -> JWTSettings? {
        let fields = ConfigKeys.auth.nodes.map(\.name)
        guard fields.contains(where: { string(base + [$0]) != nil || list(base + [$0]) != nil }) else { return nil }
        func read(_ path: String, key: String) throws(ConfigurationError) -> String {
            do {
                return try ConfigurationLoader.readFile(path)
            } catch {
                throw error.at(dotted(base + [key]))
            }
        }
        var settings = JWTSettings()
        switch (string(base + ["hs256_secret"]), string(base + ["hs256_secret_file"])) {
        case (.some, .some):
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + ["hs256_secret_file"]),
                "use either hs256_secret or hs256_secret_file, not both"
            )
        case (let secret?, nil):
            settings.secrets = [Self.unredacted(secret)]
        case (nil, let path?):
            settings.secrets = [try read(path, key: "hs256_secret_file").trimmingCharacters(in: "\n")]
            settings.secretFile = path
        case (nil, nil):
            break
        }
        if settings.secrets.contains(where: { $0.utf8.count < 32 }) {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + [string(base + ["hs256_secret"]) != nil ? "hs256_secret" : "hs256_secret_file"]),
                "an HS256 secret must be at least 32 bytes"
            )
        }
        for path in list(base + ["public_keys"]) ?? [] {
            settings.publicKeys.append((path, try read(path, key: "public_keys")))
        }
        if let path = string(base + ["jwks_file"]) {
            settings.jwks = (path, try read(path, key: "jwks_file"))
        }
        guard !settings.secrets.isEmpty || !settings.publicKeys.isEmpty || settings.jwks != nil else {
            throw ConfigurationError(
                .missingValue,
                key: dotted(base),
                "needs a key: hs256_secret(_file), public_keys or jwks_file"
            )
        }
        var algorithms: [JWTSettings.Algorithm] = []
        for name in listOrDefault(base + ["algorithms"]) {
            guard let algorithm = JWTSettings.Algorithm(rawValue: name) else {
                throw ConfigurationError(
                    .invalidValue,
                    key: dotted(base + ["algorithms"]),
                    "'\(name)' is not one of: HS256, RS256, ES256"
                )
            }
            algorithms.append(algorithm)
        }
        settings.algorithms = algorithms
        settings.issuer = string(base + ["issuer"])
        settings.audiences = list(base + ["audience"]) ?? []
        settings.leeway = try duration(base + ["leeway"])
        var sources: [JWTSettings.Source] = []
        for name in listOrDefault(base + ["token_from"]) {
            guard let source = JWTSettings.Source(rawValue: name) else {
                throw ConfigurationError(
                    .invalidValue,
                    key: dotted(base + ["token_from"]),
                    "'\(name)' is not one of: header, protocol, cookie, query"
                )
            }
            sources.append(source)
        }
        guard !sources.isEmpty else {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + ["token_from"]),
                "name at least one place to look for the token"
            )
        }
        settings.sources = sources
        settings.cookieName = stringOrDefault(base + ["cookie"])
        settings.queryParameter = stringOrDefault(base + ["query_parameter"])
        let prefix = stringOrDefault(base + ["protocol_prefix"])
        guard !prefix.isEmpty, HTTPToken.isToken(prefix) else {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + ["protocol_prefix"]),
                "'\(prefix)' is not a token prefix such as 'bearer.'"
            )
        }
        settings.protocolPrefix = prefix
        return settings
    }

    private func admin() throws(ConfigurationError) -> AdminSettings {
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

    // MARK: Sections

    private func listener(_ name: String) throws(ConfigurationError) -> ListenerConfiguration {
        let base = ["listeners", name]
        let addressText = try required(base + ["address"])
        let address: ListenAddress
        do {
            address = try ListenAddress(parsing: addressText)
        } catch {
            throw error.at(dotted(base + ["address"]))
        }
        let tlsBase = base + ["tls"]
        let certificate = string(tlsBase + ["certificate"])
        let key = string(tlsBase + ["key"])
        let selfSigned = selfSignedNames(tlsBase + ["self_signed"])
        let minimumVersion: TLSSettings.Version = try choice(tlsBase + ["min_version"])
        var tls: TLSSettings?
        let acme = try acme(tlsBase + ["acme"])
        if acme != nil, certificate != nil || key != nil || selfSigned != nil {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(tlsBase + ["acme"]),
                "use either acme, certificate and key, or self_signed"
            )
        }
        switch (certificate, key, selfSigned) {
        case (nil, nil, nil):
            if let acme {
                tls = TLSSettings(source: .acme(acme), minimumVersion: minimumVersion)
            } else if string(tlsBase + ["min_version"]) != nil {
                throw ConfigurationError(
                    .missingValue,
                    key: dotted(tlsBase),
                    "min_version needs certificate and key, self_signed or acme"
                )
            }
        case (let certificate?, let key?, nil):
            tls = TLSSettings(source: .files(certificate: certificate, key: key), minimumVersion: minimumVersion)
        case (nil, nil, let names?):
            if !names.isEmpty { tls = TLSSettings(source: .selfSigned(names: names), minimumVersion: minimumVersion) }
        case (_, _, .some):
            throw ConfigurationError(
                .invalidValue,
                key: dotted(tlsBase + ["self_signed"]),
                "use either self_signed or certificate and key, not both"
            )
        case (nil, .some, nil):
            throw ConfigurationError(
                .missingValue,
                key: dotted(tlsBase + ["certificate"]),
                "a key needs its certificate"
            )
        case (.some, nil, nil):
            throw ConfigurationError(.missingValue, key: dotted(tlsBase + ["key"]), "a certificate needs its key")
        }
        // SNI certificates, client certificates, HSTS: only with TLS.
        var additional: [TLSSettings.Additional] = []
        for certificateName in names["certificates"] ?? [] {
            let entry = tlsBase + ["certificates", certificateName]
            let certificate = string(entry + ["certificate"])
            let key = string(entry + ["key"])
            if certificate == nil && key == nil { continue }  // another listener's
            guard let certificate else {
                throw ConfigurationError(
                    .missingValue,
                    key: dotted(entry + ["certificate"]),
                    "a key needs its certificate"
                )
            }
            guard let key else {
                throw ConfigurationError(.missingValue, key: dotted(entry + ["key"]), "a certificate needs its key")
            }
            additional.append(.init(name: certificateName, certificate: certificate, key: key))
        }
        let clientCertificates: TLSSettings.ClientCertificates = try choice(tlsBase + ["client_certificates"])
        let clientCA = string(tlsBase + ["client_ca"])
        let hsts = string(tlsBase + ["hsts"])
        let http2 = try boolean(tlsBase + ["http2"])
        if var settings = tls {
            settings.http2 = http2
            settings.additional = additional
            settings.clientCertificates = clientCertificates
            settings.clientCA = clientCA
            settings.hsts = hsts
            if clientCertificates != .off && clientCA == nil {
                throw ConfigurationError(
                    .missingValue,
                    key: dotted(tlsBase + ["client_ca"]),
                    "client_certificates: \(clientCertificates.rawValue) needs the CAs that issue them"
                )
            }
            tls = settings
        } else if !additional.isEmpty || clientCertificates != .off || clientCA != nil || hsts != nil || http2 {
            throw ConfigurationError(
                .missingValue,
                key: dotted(tlsBase),
                "certificates, client certificates, hsts and http2 need certificate and key, self_signed or acme"
            )
        }
        var redirect: Int?
        if string(base + ["redirect_https"]) != nil {
            redirect = try integer(base + ["redirect_https"])
            if tls != nil {
                throw ConfigurationError(
                    .invalidValue,
                    key: dotted(base + ["redirect_https"]),
                    "a TLS listener does not redirect to https: it is https"
                )
            }
        }
        var proxyProtocol: ProxyProtocolSettings?
        let trustedKey = base + ["proxy_protocol", "trusted"]
        if let entries = list(trustedKey) {
            guard !entries.isEmpty else {
                throw ConfigurationError(
                    .invalidValue,
                    key: dotted(trustedKey),
                    "name the load balancers (addresses or CIDR blocks), or leave proxy_protocol out"
                )
            }
            proxyProtocol = ProxyProtocolSettings(trusted: try networks(entries, key: trustedKey))
        }
        return ListenerConfiguration(
            name: name,
            address: address,
            tls: tls,
            redirectHTTPSPort: redirect,
            proxyProtocol: proxyProtocol
        )
    }

    /// Addresses and CIDR blocks (`limits.trusted_proxies`, a listener's `proxy_protocol.trusted`).
    private func networks(_ entries: [String], key: [String]) throws(ConfigurationError) -> [IPNetwork] {
        var networks: [IPNetwork] = []
        for entry in entries {
            guard let network = IPNetwork(parsing: entry) else {
                throw ConfigurationError(
                    .invalidValue,
                    key: dotted(key),
                    "'\(entry)' is not an IP address or CIDR block (10.0.0.0/8, ::1/128)"
                )
            }
            networks.append(network)
        }
        return networks
    }

    /// `tls.acme` of a listener (docs/certificates.md): nil unless `domains` is set.
    private func acme(_ base: [String]) throws(ConfigurationError) -> ACMESettings? {
        let keys = ConfigKeys.acme.nodes.map(\.name).filter { $0 != "domains" }
        guard let domains = list(base + ["domains"]), !domains.isEmpty else {
            for key in keys where string(base + [key]) != nil || list(base + [key]) != nil {
                throw ConfigurationError(
                    .missingValue,
                    key: dotted(base + ["domains"]),
                    "\(dotted(base + [key])) is set but no domains are: name the certificate's domains"
                )
            }
            return nil
        }
        var names: [String] = []
        for domain in domains {
            let name = domain.lowercased()
            guard ACMESettings.isDomainName(name) else {
                throw ConfigurationError(
                    .invalidValue,
                    key: dotted(base + ["domains"]),
                    "'\(domain)' is not a domain name an ACME CA issues for (letters, digits, '-', dots; a leading '*.' needs DNS-01, which wssgate does not answer)"
                )
            }
            if !names.contains(name) { names.append(name) }
        }
        let directoryText = try required(base + ["directory"])
        let directory = ACMESettings.presets[directoryText] ?? directoryText
        guard directory.hasPrefix("https://"), directory.count > 8 else {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + ["directory"]),
                "'\(directoryText)' is neither an https:// URL nor a preset (\(ACMESettings.presets.keys.sorted().joined(separator: ", ")))"
            )
        }
        let email = string(base + ["email"])
        if let email, !(email.contains("@") && !email.contains(" ") && !email.hasPrefix("@") && !email.hasSuffix("@")) {
            throw ConfigurationError(.invalidValue, key: dotted(base + ["email"]), "'\(email)' is not an email address")
        }
        var challenges: [ACMESettings.Challenge] = []
        for text in listOrDefault(base + ["challenges"]) {
            guard let challenge = ACMESettings.Challenge(rawValue: text) else {
                throw ConfigurationError(
                    .invalidValue,
                    key: dotted(base + ["challenges"]),
                    "'\(text)' is not a challenge wssgate answers (tls-alpn-01, http-01)"
                )
            }
            if !challenges.contains(challenge) { challenges.append(challenge) }
        }
        let keyID = string(base + ["eab_kid"])
        let hmacKey = string(base + ["eab_hmac_key"])
        guard (keyID == nil) == (hmacKey == nil) else {
            throw ConfigurationError(
                .missingValue,
                key: dotted(base + [keyID == nil ? "eab_kid" : "eab_hmac_key"]),
                "external account binding needs both eab_kid and eab_hmac_key"
            )
        }
        let storage = stringOrDefault(base + ["storage"])
        guard storage.hasPrefix("/") || storage.hasPrefix(".") else {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + ["storage"]),
                "'\(storage)' must be an absolute path or start with '.'"
            )
        }
        let retryInitial = try duration(base + ["retry_initial"])
        let retryMax = try duration(base + ["retry_max"])
        guard retryInitial >= .seconds(1) else {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + ["retry_initial"]),
                "at least 1s: a CA counts failed orders"
            )
        }
        guard retryMax >= retryInitial else {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + ["retry_max"]),
                "must not be shorter than retry_initial"
            )
        }
        return ACMESettings(
            directory: directory,
            email: email,
            domains: names,
            storage: storage,
            caBundle: string(base + ["ca_bundle"]),
            challenges: challenges,
            externalAccountKeyID: keyID,
            externalAccountHMACKey: hmacKey,
            retryInitial: retryInitial,
            retryMax: retryMax
        )
    }

    private func route(_ name: String) throws(ConfigurationError) -> RouteConfiguration {
        let base = ["routes", name]
        let path = try required(base + ["path"])
        guard path.hasPrefix("/"), !path.contains("?"), !path.contains("#"), !path.contains(" ") else {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + ["path"]),
                "'\(path)' is not a path: it must start with '/' and hold no '?', '#' or spaces"
            )
        }
        guard !HealthPaths.all.contains(path) else {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + ["path"]),
                "\(path) is reserved for health checks"
            )
        }
        guard string(base + ["kind"]) != nil else {
            throw ConfigurationError(
                .missingValue,
                key: dotted(base + ["kind"]),
                "every route needs a kind (\(RouteConfiguration.Kind.allCases.map(\.rawValue).joined(separator: ", ")))"
            )
        }
        let kind: RouteConfiguration.Kind = try choice(base + ["kind"])
        let subprotocols = list(base + ["subprotocols"]) ?? []
        for value in subprotocols where !HTTPToken.isToken(value) {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + ["subprotocols"]),
                "'\(value)' is not a valid subprotocol token"
            )
        }
        let origins = list(base + ["origins"]) ?? []
        for entry in origins where !OriginPolicy.isValidEntry(entry) {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + ["origins"]),
                "'\(entry)' is not an origin: scheme://host[:port], scheme://*.domain, or *"
            )
        }
        let requireSubprotocol = try boolean(base + ["require_subprotocol"])
        if requireSubprotocol && subprotocols.isEmpty {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + ["require_subprotocol"]),
                "needs at least one entry in subprotocols"
            )
        }
        let limits = WebSocketLimits(
            maxMessageBytes: try bytes(base + ["max_message_bytes"]),
            pingInterval: try duration(base + ["ping_interval"]),
            pongTimeout: try duration(base + ["pong_timeout"]),
            idleTimeout: try duration(base + ["idle_timeout"]),
            closeTimeout: try duration(base + ["close_timeout"]),
            sendQueueBytes: try bytes(base + ["send_queue_bytes"]),
            overflow: try choice(base + ["send_queue_overflow"]),
            overflowCloseCode: try closeCode(base + ["overflow_close_code"]),
            maxMessagesPerSecond: try rate(base + ["max_messages_per_second"]),
            messageBurst: try integer(base + ["message_burst"])
        )
        let c = base + ["compression"]
        let compression = CompressionSettings(
            enabled: try boolean(c + ["enabled"]),
            serverNoContextTakeover: try boolean(c + ["server_no_context_takeover"]),
            clientNoContextTakeover: try boolean(c + ["client_no_context_takeover"]),
            serverMaxWindowBits: try integer(c + ["server_max_window_bits"]),
            clientMaxWindowBits: try integer(c + ["client_max_window_bits"]),
            level: try integer(c + ["level"]),
            memoryLevel: try integer(c + ["memory_level"]),
            minMessageBytes: try bytes(c + ["min_message_bytes"])
        )
        let backend = try self.backend(base, kind: kind)
        return RouteConfiguration(
            name: name,
            path: path,
            backend: backend,
            subprotocols: subprotocols,
            requireSubprotocol: requireSubprotocol,
            limits: limits,
            compression: compression,
            origins: OriginPolicy(allowed: origins),
            auth: try auth(base + ["auth"])
        )
    }

    /// The route's backend, from the section of its kind; a section of another kind is an error.
    private func backend(
        _ base: [String],
        kind: RouteConfiguration.Kind
    ) throws(ConfigurationError) -> RouteConfiguration.Backend {
        let present: [RouteConfiguration.Kind: Bool] = [
            .worker: string(base + ["worker", "command"]) != nil || string(base + ["worker", "socket"]) != nil,
            .proxy: string(base + ["proxy", "upstream"]) != nil,
            .http: string(base + ["http", "url"]) != nil,
            .static: string(base + ["static", "root"]) != nil,
            .hub: list(base + ["hub", "subscribe"]) != nil || list(base + ["hub", "publish"]) != nil
                || string(base + ["hub", "history", "size"]) != nil || string(base + ["hub", "client_script"]) != nil
                || string(base + ["hub", "presence"]) != nil,
        ]
        for (section, isPresent) in present.sorted(by: { $0.key.rawValue < $1.key.rawValue })
        where isPresent && section != kind {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + [section.rawValue]),
                "only routes of kind \(section.rawValue) have a \(section.rawValue) section"
            )
        }
        switch kind {
        case .echo: return .echo
        case .worker: return .worker(try worker(base + ["worker"]))
        case .proxy: return .proxy(try proxy(base + ["proxy"]))
        case .hub: return .hub(try hub(base + ["hub"]))
        case .http: return .http(try http(base + ["http"]))
        case .static: return .static(try files(base + ["static"]))
        }
    }

    private func files(_ base: [String]) throws(ConfigurationError) -> StaticSettings {
        guard let root = string(base + ["root"]),
            root.hasPrefix("/") || root.hasPrefix(".") || root == StaticSettings.builtinDemo
        else {
            throw ConfigurationError(
                .missingValue,
                key: dotted(base + ["root"]),
                "a static route needs static.root, a folder path (or \(StaticSettings.builtinDemo))"
            )
        }
        let index = stringOrDefault(base + ["index"])
        guard !index.contains("/"), !index.isEmpty else {
            throw ConfigurationError(.invalidValue, key: dotted(base + ["index"]), "a file name, without '/'")
        }
        return StaticSettings(root: root, index: index)
    }

    private func hub(_ base: [String]) throws(ConfigurationError) -> HubRouteSettings {
        let settings = HubRouteSettings(
            subscribe: list(base + ["subscribe"]) ?? listOrDefault(base + ["subscribe"]),
            publish: list(base + ["publish"]) ?? listOrDefault(base + ["publish"]),
            history: try history(base + ["history"]),
            clientScript: try boolean(base + ["client_script"]),
            presence: try boolean(base + ["presence"])
        )
        for (key, rules) in [
            ("subscribe", settings.subscribe), ("publish", settings.publish),
            ("history.topics", settings.history?.topics ?? []),
        ] {
            for rule in rules where !HubRouteSettings.isValidTopic(rule, allowPattern: true) {
                throw ConfigurationError(
                    .invalidValue,
                    key: dotted(base + [key]),
                    "'\(rule)' is not a topic, 'prefix.*' or '*'"
                )
            }
        }
        return settings
    }

    /// Off (nil) unless `size` is above zero; any other history key without a size is a
    /// mistake worth saying.
    private func history(_ base: [String]) throws(ConfigurationError) -> HistorySettings? {
        let size = try integer(base + ["size"])
        guard size > 0 else {
            for key in ConfigKeys.history.nodes.map(\.name) where key != "size" {
                if string(base + [key]) != nil || list(base + [key]) != nil {
                    throw ConfigurationError(
                        .missingValue,
                        key: dotted(base + ["size"]),
                        "\(dotted(base + [key])) is set but history is off: set \(dotted(base + ["size"])) (publications kept per topic)"
                    )
                }
            }
            return nil
        }
        let storage: HistorySettings.Storage = try choice(base + ["storage"])
        return HistorySettings(
            topics: list(base + ["topics"]) ?? listOrDefault(base + ["topics"]),
            size: size,
            ttl: try duration(base + ["ttl"]),
            maxBytes: try bytes(base + ["max_bytes"]),
            storage: storage,
            directory: string(base + ["directory"]) ?? ""
        )
    }

    private func proxy(_ base: [String]) throws(ConfigurationError) -> ProxySettings {
        let upstream = string(base + ["upstream"])
        guard let upstream else {
            throw ConfigurationError(
                .missingValue,
                key: dotted(base + ["upstream"]),
                "a proxy route needs proxy.upstream (ws://host:port/path or unix:/path)"
            )
        }
        guard let parsed = ProxySettings.parseUpstream(upstream) else {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + ["upstream"]),
                "'\(upstream)' is not ws://host:port/path or unix:/socket[#/path]"
            )
        }
        return ProxySettings(
            upstream: parsed.0,
            path: parsed.path,
            hostHeader: parsed.host,
            connectTimeout: try duration(base + ["connect_timeout"]),
            handshakeTimeout: try duration(base + ["handshake_timeout"]),
            mode: try choice(base + ["mode"]),
            lostCloseCode: try closeCode(base + ["lost_close_code"])
        )
    }

    private func http(_ base: [String]) throws(ConfigurationError) -> HTTPBackendSettings {
        guard let url = string(base + ["url"]) else {
            throw ConfigurationError(
                .missingValue,
                key: dotted(base + ["url"]),
                "an http route needs http.url (http://host:port/path or unix:/path)"
            )
        }
        guard let parsed = HTTPBackendSettings.parseURL(url) else {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + ["url"]),
                "'\(url)' is not http://host:port/path or unix:/socket[#/path]"
            )
        }
        let headers = (list(base + ["forward_headers"]) ?? listOrDefault(base + ["forward_headers"])).map {
            $0.lowercased()
        }
        for header in headers where !HTTPToken.isToken(header) {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + ["forward_headers"]),
                "'\(header)' is not a header name"
            )
        }
        return HTTPBackendSettings(
            endpoint: parsed.0,
            path: parsed.path,
            hostHeader: parsed.host,
            connections: try integer(base + ["connections"]),
            timeout: try duration(base + ["timeout"]),
            retries: try integer(base + ["retries"]),
            queueMessages: try integer(base + ["queue_messages"]),
            queueBytes: try bytes(base + ["queue_bytes"]),
            batchMessages: try integer(base + ["batch_messages"]),
            unavailableCloseCode: try closeCode(base + ["unavailable_close_code"]),
            forwardHeaders: headers,
            maxResponseBytes: try bytes(base + ["max_response_bytes"])
        )
    }

    private func worker(_ base: [String]) throws(ConfigurationError) -> WorkerSettings {
        let command = string(base + ["command"])
        let socket = string(base + ["socket"])
        let source: WorkerSettings.Source
        switch (command, socket) {
        case (let command?, nil):
            let environment = list(base + ["env"]) ?? []
            for entry in environment where !entry.contains("=") || entry.hasPrefix("=") {
                throw ConfigurationError(.invalidValue, key: dotted(base + ["env"]), "'\(entry)' is not NAME=value")
            }
            source = .supervised(
                command: command,
                arguments: list(base + ["args"]) ?? [],
                environment: environment,
                instances: try integer(base + ["instances"])
            )
        case (nil, let socket?):
            guard socket.hasPrefix("/") else {
                throw ConfigurationError(
                    .invalidValue,
                    key: dotted(base + ["socket"]),
                    "a worker socket path must be absolute"
                )
            }
            for key in ["args", "env", "instances"] where string(base + [key]) != nil || list(base + [key]) != nil {
                throw ConfigurationError(
                    .invalidValue,
                    key: dotted(base + [key]),
                    "only a supervised worker (command) takes \(key)"
                )
            }
            source = .external(socket: socket)
        case (nil, nil):
            throw ConfigurationError(
                .missingValue,
                key: dotted(base + ["command"]),
                "a worker route needs worker.command (supervised) or worker.socket (external)"
            )
        case (.some, .some):
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + ["socket"]),
                "use either worker.command or worker.socket, not both"
            )
        }
        var uids: [Int] = []
        for text in list(base + ["allowed_uids"]) ?? [] {
            guard let uid = Int(text), uid >= 0 else {
                throw ConfigurationError(.wrongType, key: dotted(base + ["allowed_uids"]), "'\(text)' is not a user id")
            }
            uids.append(uid)
        }
        let onChange: WorkerSettings.ChangePolicy = try choice(base + ["on_change"])
        if onChange == .move, case .external = source {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + ["on_change"]),
                "only a supervised worker (command) can be moved to new instances"
            )
        }
        return WorkerSettings(
            source: source,
            authorize: try boolean(base + ["authorize"]),
            authorizeTimeout: try duration(base + ["authorize_timeout"]),
            resumeTimeout: try duration(base + ["resume_timeout"]),
            forwardHeaders: listOrDefault(base + ["forward_headers"]).map { $0.lowercased() },
            allowedUIDs: uids,
            socketDirectory: string(base + ["socket_dir"]) ?? "",
            stopTimeout: try duration(base + ["stop_timeout"]),
            minInstances: try minInstances(base, source: source),
            idleStop: try duration(base + ["idle_stop"]),
            attachmentBytes: try bytes(base + ["attachment_bytes"]),
            wakeQueueBytes: try bytes(base + ["wake_queue_bytes"]),
            autoResponses: try autoResponses(base + ["auto_response"]),
            onChange: onChange
        )
    }

    /// `min_instances`: only a supervised pool can stop and start its instances.
    private func minInstances(_ base: [String], source: WorkerSettings.Source) throws(ConfigurationError) -> Int? {
        guard string(base + ["min_instances"]) != nil else { return nil }
        guard case .supervised(_, _, _, let instances) = source else {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + ["min_instances"]),
                "only a supervised worker (command) can stop and start instances"
            )
        }
        let value = try integer(base + ["min_instances"])
        guard value <= instances else {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + ["min_instances"]),
                "\(value) is more than instances (\(instances))"
            )
        }
        return value
    }

    private func autoResponses(_ base: [String]) throws(ConfigurationError) -> [WorkerSettings.AutoResponse] {
        let requests = list(base + ["requests"]) ?? []
        let responses = list(base + ["responses"]) ?? []
        guard requests.count == responses.count else {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + ["responses"]),
                "\(responses.count) responses for \(requests.count) requests: give one per request"
            )
        }
        guard Set(requests).count == requests.count else {
            throw ConfigurationError(.invalidValue, key: dotted(base + ["requests"]), "a request is listed twice")
        }
        return zip(requests, responses).map { .init(request: $0, response: $1) }
    }

    // MARK: Typed reads

    private func dotted(_ path: [String]) -> String { path.joined(separator: ".") }

    private func string(_ path: [String]) -> String? {
        reader.string(forKey: ConfigKey(path))
    }

    private func list(_ path: [String]) -> [String]? {
        reader.stringArray(forKey: ConfigKey(path))
            ?? reader.string(forKey: ConfigKey(path)).map { text in
                text.split(separator: ",").map { String($0).trimmingCharacters(in: " ") }
            }
    }

    /// `self_signed: true` means the loopback names; a list names the certificate's subjects.
    private func selfSignedNames(_ path: [String]) -> [String]? {
        if let text = string(path) {
            switch ValueParsing.bool(text) {
            case true?: return TLSSettings.loopbackNames
            case false?: return []
            case nil: break
            }
        }
        guard let names = list(path) else { return nil }
        if names.count == 1, let flag = ValueParsing.bool(names[0]) { return flag ? TLSSettings.loopbackNames : [] }
        return names
    }

    private func required(_ path: [String]) throws(ConfigurationError) -> String {
        guard let value = string(path), !value.isEmpty else {
            throw ConfigurationError(.missingValue, key: dotted(path), "a value is required")
        }
        return value
    }

    /// The key's declaration; every key the builder reads is declared in `ConfigKeys`.
    private func spec(_ path: [String]) -> ConfigKeySpec {
        guard let spec = ConfigSchema.spec(for: path) else {
            preconditionFailure("\(dotted(path)) is read but not declared in ConfigKeys")
        }
        return spec
    }

    /// The key's text, or its declared default; nil when it has neither.
    private func text(_ path: [String]) -> String? {
        if let value = string(path) { return value }
        if case .value(let text, _) = spec(path).defaultValue { return text }
        return nil
    }

    /// The key's text or its declared default, for keys that have one.
    private func stringOrDefault(_ path: [String]) -> String {
        guard let value = text(path) else { preconditionFailure("\(dotted(path)) has no declared default") }
        return value
    }

    /// The key's list, or its declared default.
    private func listOrDefault(_ path: [String]) -> [String] {
        if let value = list(path) { return value }
        if case .list(let items) = spec(path).defaultValue { return items }
        return []
    }

    private func choice<T: RawRepresentable & CaseIterable>(_ path: [String]) throws(ConfigurationError) -> T
    where T.RawValue == String {
        let text = stringOrDefault(path)
        guard let parsed = T(rawValue: text) else {
            let options = T.allCases.map(\.rawValue).joined(separator: ", ")
            throw ConfigurationError(.invalidValue, key: dotted(path), "'\(text)' is not one of: \(options)")
        }
        return parsed
    }

    private func boolean(_ path: [String]) throws(ConfigurationError) -> Bool {
        let text = stringOrDefault(path)
        guard let parsed = ValueParsing.bool(text) else {
            throw ConfigurationError(.wrongType, key: dotted(path), "'\(text)' is not a boolean (true or false)")
        }
        return parsed
    }

    private func integer(_ path: [String]) throws(ConfigurationError) -> Int {
        guard let value = try optionalInteger(path) else {
            preconditionFailure("\(dotted(path)) has no declared default")
        }
        return value
    }

    /// An integer within the key's declared range; nil when it is unset and has no default.
    private func optionalInteger(_ path: [String]) throws(ConfigurationError) -> Int? {
        guard case .integer(let range) = spec(path).kind else {
            preconditionFailure("\(dotted(path)) is not declared an integer")
        }
        guard let text = text(path) else { return nil }
        guard let parsed = Int(text) else {
            throw ConfigurationError(.wrongType, key: dotted(path), "'\(text)' is not an integer")
        }
        guard range.contains(parsed) else {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(path),
                "\(parsed) is outside \(range.lowerBound)…\(range.upperBound)"
            )
        }
        return parsed
    }

    /// One of the key's declared words, as a close code (`overflow_close_code`: 1013 or 1008, the
    /// two that tell a client why it was dropped for not reading; `lost_close_code`: 1011 or 1012).
    private func closeCode(_ path: [String]) throws(ConfigurationError) -> WebSocketErrorCode {
        guard case .word(let words) = spec(path).kind else {
            preconditionFailure("\(dotted(path)) is not declared a word")
        }
        let text = stringOrDefault(path)
        guard words.contains(text), let code = UInt16(text) else {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(path),
                "'\(text)' is not \(words.joined(separator: " or "))"
            )
        }
        return WebSocketErrorCode(code: code)
    }

    /// A non-negative rate per second (fractions allowed: 0.5 is one every two seconds).
    private func rate(_ path: [String]) throws(ConfigurationError) -> Double {
        let text = stringOrDefault(path)
        guard let parsed = Double(text), parsed.isFinite else {
            throw ConfigurationError(.wrongType, key: dotted(path), "'\(text)' is not a number")
        }
        guard parsed >= 0, parsed <= 10_000_000 else {
            throw ConfigurationError(.invalidValue, key: dotted(path), "must be from 0 (no limit) to 10000000")
        }
        return parsed
    }

    private func bytes(_ path: [String]) throws(ConfigurationError) -> Int {
        guard case .bytes(let range) = spec(path).kind else {
            preconditionFailure("\(dotted(path)) is not declared a byte count")
        }
        let text = stringOrDefault(path)
        guard let parsed = ValueParsing.byteCount(text) else {
            throw ConfigurationError(
                .wrongType,
                key: dotted(path),
                "'\(text)' is not a byte count (such as 65536, 64KiB or 1MiB)"
            )
        }
        guard range.contains(parsed) else {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(path),
                "\(parsed) bytes is outside \(range.lowerBound)…\(range.upperBound)"
            )
        }
        return parsed
    }

    /// A duration that may be switched off with `never`: nil when switched off.
    private func optionalDuration(_ path: [String]) throws(ConfigurationError) -> TimeAmount? {
        guard case .durationOrNever = spec(path).kind else {
            preconditionFailure("\(dotted(path)) is not declared a duration or never")
        }
        let text = stringOrDefault(path)
        guard text != "never" else { return nil }
        return try parseDuration(text, path, positive: false)
    }

    private func duration(_ path: [String]) throws(ConfigurationError) -> TimeAmount {
        guard case .duration(let positive) = spec(path).kind else {
            preconditionFailure("\(dotted(path)) is not declared a duration")
        }
        return try parseDuration(stringOrDefault(path), path, positive: positive)
    }

    private func parseDuration(
        _ text: String,
        _ path: [String],
        positive: Bool
    ) throws(ConfigurationError) -> TimeAmount {
        guard let parsed = ValueParsing.duration(text) else {
            throw ConfigurationError(
                .wrongType,
                key: dotted(path),
                "'\(text)' is not a duration (such as 30, 30s, 500ms or 5m)"
            )
        }
        if positive && parsed <= .zero {
            throw ConfigurationError(.invalidValue, key: dotted(path), "must be longer than zero")
        }
        return parsed
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        var s = Substring(self)
        while s.first == set { s = s.dropFirst() }
        while s.last == set { s = s.dropLast() }
        return String(s)
    }
}

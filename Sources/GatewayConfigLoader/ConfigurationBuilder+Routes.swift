import Configuration
import GatewayCore
import NIOCore
import NIOWebSocket

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Routes and their backends.
extension ConfigurationBuilder {
    func route(_ name: String) throws(ConfigurationError) -> RouteConfiguration {
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
        let limits = try webSocketLimits(base)
        let compression = try compression(base + ["compression"])
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

    /// A route's WebSocket limits: sizes, timeouts, rates and the send queue's overflow policy.
    private func webSocketLimits(_ base: [String]) throws(ConfigurationError) -> WebSocketLimits {
        WebSocketLimits(
            maxMessageBytes: try bytes(base + ["max_message_bytes"]),
            pingInterval: try duration(base + ["ping_interval"]),
            pongTimeout: try duration(base + ["pong_timeout"]),
            idleTimeout: try duration(base + ["idle_timeout"]),
            closeTimeout: try duration(base + ["close_timeout"]),
            sendQueueBytes: try bytes(base + ["send_queue_bytes"]),
            overflow: try choice(base + ["send_queue_overflow"]),
            overflowCloseCode: try closeCode(base + ["overflow_close_code"]),
            maxMessagesPerSecond: try rate(base + ["max_messages_per_second"]),
            messageBurst: try integer(base + ["message_burst"]),
            maxPingsPerSecond: try rate(base + ["max_pings_per_second"]),
            maxInflatedBytesPerSecond: try bytes(base + ["max_inflated_bytes_per_second"])
        )
    }

    /// A route's permessage-deflate settings.
    private func compression(_ c: [String]) throws(ConfigurationError) -> CompressionSettings {
        CompressionSettings(
            enabled: try boolean(c + ["enabled"]),
            serverNoContextTakeover: try boolean(c + ["server_no_context_takeover"]),
            clientNoContextTakeover: try boolean(c + ["client_no_context_takeover"]),
            serverMaxWindowBits: try integer(c + ["server_max_window_bits"]),
            clientMaxWindowBits: try integer(c + ["client_max_window_bits"]),
            level: try integer(c + ["level"]),
            memoryLevel: try integer(c + ["memory_level"]),
            minMessageBytes: try bytes(c + ["min_message_bytes"])
        )
    }

    /// The route's backend, from the section of its kind; a section of another kind is an error.
    func backend(
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

    func files(_ base: [String]) throws(ConfigurationError) -> StaticSettings {
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

    func hub(_ base: [String]) throws(ConfigurationError) -> HubRouteSettings {
        let settings = HubRouteSettings(
            subscribe: list(base + ["subscribe"]) ?? listOrDefault(base + ["subscribe"]),
            publish: list(base + ["publish"]) ?? listOrDefault(base + ["publish"]),
            history: try history(base + ["history"]),
            clientScript: try boolean(base + ["client_script"]),
            presence: try boolean(base + ["presence"]),
            maxSubscriptions: try integer(base + ["max_subscriptions"]),
            maxPatterns: try integer(base + ["max_patterns"])
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
    func history(_ base: [String]) throws(ConfigurationError) -> HistorySettings? {
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
            maxTopics: try integer(base + ["max_topics"]),
            storage: storage,
            directory: string(base + ["directory"]) ?? ""
        )
    }

    func proxy(_ base: [String]) throws(ConfigurationError) -> ProxySettings {
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

    func http(_ base: [String]) throws(ConfigurationError) -> HTTPBackendSettings {
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

    func worker(_ base: [String]) throws(ConfigurationError) -> WorkerSettings {
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
    func minInstances(_ base: [String], source: WorkerSettings.Source) throws(ConfigurationError) -> Int? {
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

    func autoResponses(_ base: [String]) throws(ConfigurationError) -> [WorkerSettings.AutoResponse] {
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
}

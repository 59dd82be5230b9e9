/// The shape of the configuration: every key the gateway knows, and what kind of value it takes.
///
/// One table drives validation of the file (unknown keys, mapping-versus-value mistakes), the
/// list of environment variables that may override it, and the test that keeps
/// `docs/configuration.md` complete.
public enum ConfigSchema {
    public indirect enum Node: Sendable {
        /// A single value (string, number, duration, byte count, boolean).
        case value
        /// A list of values.
        case list
        /// A single value or a list (for example `self_signed: true` or a list of names).
        case valueOrList
        /// A fixed set of keys.
        case section([(String, Node)])
        /// Keys chosen by the user (listener and route names), each holding the same section.
        case named([(String, Node)])
    }

    static let compression: [(String, Node)] = [
        ("enabled", .value),
        ("server_no_context_takeover", .value),
        ("client_no_context_takeover", .value),
        ("server_max_window_bits", .value),
        ("client_max_window_bits", .value),
        ("level", .value),
        ("memory_level", .value),
        ("min_message_bytes", .value),
    ]

    static let worker: [(String, Node)] = [
        ("command", .value),
        ("args", .list),
        ("env", .list),
        ("instances", .value),
        ("socket", .value),
        ("socket_dir", .value),
        ("authorize", .value),
        ("authorize_timeout", .value),
        ("resume_timeout", .value),
        ("forward_headers", .list),
        ("allowed_uids", .list),
        ("stop_timeout", .value),
    ]

    static let route: [(String, Node)] = [
        ("path", .value),
        ("kind", .value),
        ("subprotocols", .list),
        ("origins", .list),
        ("require_subprotocol", .value),
        ("max_message_bytes", .value),
        ("ping_interval", .value),
        ("pong_timeout", .value),
        ("idle_timeout", .value),
        ("close_timeout", .value),
        ("send_queue_bytes", .value),
        ("send_queue_overflow", .value),
        ("overflow_close_code", .value),
        ("max_messages_per_second", .value),
        ("message_burst", .value),
        ("compression", .section(compression)),
        ("worker", .section(worker)),
        ("proxy", .section([("upstream", .value), ("connect_timeout", .value), ("handshake_timeout", .value)])),
        ("hub", .section([("subscribe", .list), ("publish", .list)])),
        ("static", .section([("root", .value), ("index", .value)])),
        ("auth", .section([
            ("hs256_secret", .value),
            ("hs256_secret_file", .value),
            ("public_keys", .list),
            ("jwks_file", .value),
            ("algorithms", .list),
            ("issuer", .value),
            ("audience", .list),
            ("leeway", .value),
            ("token_from", .list),
            ("cookie", .value),
            ("query_parameter", .value),
            ("protocol_prefix", .value),
        ])),
    ]

    static let listener: [(String, Node)] = [
        ("address", .value),
        ("redirect_https", .value),
        ("tls", .section([
            ("certificate", .value),
            ("key", .value),
            ("self_signed", .valueOrList),
            ("min_version", .value),
            ("certificates", .named([("certificate", .value), ("key", .value)])),
            ("client_certificates", .value),
            ("client_ca", .value),
            ("hsts", .value),
            ("acme", .section([
                ("directory", .value),
                ("email", .value),
                ("domains", .valueOrList),
                ("storage", .value),
                ("ca_bundle", .value),
                ("challenges", .valueOrList),
                ("eab_kid", .value),
                ("eab_hmac_key", .value),
                ("retry_initial", .value),
                ("retry_max", .value),
            ])),
        ])),
    ]

    public static let root: [(String, Node)] = [
        ("log", .section([("level", .value), ("format", .value), ("redact_parameters", .list)])),
        ("server", .section([("threads", .value), ("drain_timeout", .value), ("drain_spread", .value), ("removed_route_grace", .value)])),
        ("http", .section([("max_header_bytes", .value), ("header_timeout", .value), ("idle_timeout", .value)])),
        ("listeners", .named(listener)),
        ("routes", .named(route)),
        ("limits", .section([
            ("max_connections", .value),
            ("max_connections_per_ip", .value),
            ("connections_per_second_per_ip", .value),
            ("connection_burst_per_ip", .value),
            ("trusted_proxies", .list),
        ])),
        ("admin", .section([("address", .value), ("token", .value), ("token_file", .value)])),
        ("cluster", .section([
            ("redis", .value),
            ("node", .value),
            ("node_number", .value),
            ("presence_ttl", .value),
            ("degraded_readiness", .value),
            ("request_timeout", .value),
            ("prefix", .value),
        ])),
    ]

    /// Every key path, with `<name>` standing for a user-chosen name: for documentation checks.
    public static var allKeyPatterns: [String] {
        var result: [String] = []
        func walk(_ entries: [(String, Node)], _ prefix: String) {
            for (key, node) in entries {
                let path = prefix.isEmpty ? key : "\(prefix).\(key)"
                switch node {
                case .value, .list, .valueOrList: result.append(path)
                case .section(let children): walk(children, path)
                case .named(let children): walk(children, "\(path).<name>")
                }
            }
        }
        walk(root, "")
        return result
    }

    /// Every concrete key path for the given listener and route names.
    static func keyPaths(names: [String: [String]]) -> [[String]] {
        var result: [[String]] = []
        func walk(_ entries: [(String, Node)], _ prefix: [String]) {
            for (key, node) in entries {
                let path = prefix + [key]
                switch node {
                case .value, .list, .valueOrList: result.append(path)
                case .section(let children): walk(children, path)
                case .named(let children):
                    for name in names[key] ?? [] { walk(children, path + [name]) }
                }
            }
        }
        walk(root, [])
        return result
    }
}

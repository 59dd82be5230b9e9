import GatewayCore
import NIOCore

/// Every configuration key, declared once: name, kind of value, default, reload behaviour and
/// documentation line, with the getter `check-config` prints it from. The schema check
/// (`ConfigSchema`), the builder's defaults and range checks (`ConfigurationBuilder`), the
/// printer (`EffectiveConfiguration`), the reload's restart check and the tables of
/// docs/configuration.md (`ConfigDocs`) are all read from here, so a key is added in one place.
///
/// The order is the order `check-config` prints and the docs list the keys.
public enum ConfigKeys {
    /// The whole configuration.
    public static let root = ConfigSection<GatewayConfiguration>([
        .section("log", log) { $0.log },
        .section("server", server) { $0.server },
        .section("http", http) { $0.http },
        .section("limits", limits) { $0.limits },
        .section("admin", admin) { $0.admin },
        .section("cluster", cluster) { $0.cluster },
        .named("listeners", listener, printsWhenEmpty: true) { $0.listeners.map { ($0.name, $0) } },
        .named("routes", route, printsWhenEmpty: true) { $0.routes.map { ($0.name, $0) } },
    ])

    /// `log`: what the gateway's lines say and hide.
    static let log = ConfigSection<LogSettings>([
        .key(
            "level",
            .word(words(LogSettings.Level.self)),
            .value("info"),
            .applies,
            "`trace`, `debug`, `info`, `notice`, `warning`, `error`, `critical`. Failed TLS handshakes and refused frames are logged at `debug`."
        ) { .bare($0.level.rawValue) },
        .key(
            "format",
            .word(words(LogSettings.Format.self)),
            .value("logfmt"),
            .applies,
            "`logfmt` or `json` (one object per line). Logs go to standard error."
        ) { .bare($0.format.rawValue) },
        .key(
            "redact_parameters",
            .list,
            .list(LogSettings.defaultRedactedParameters),
            .applies,
            "Query parameters and `name=value` / `name: value` fields whose values are replaced by `[redacted]` in every log line (request targets, worker output, errors). `Authorization` and `Cookie` values, `Bearer`/`Basic` credentials and anything shaped like a JWT are always redacted."
        ) { .list($0.redactParameters) },
    ])

    /// `server`: threads and draining.
    static let server = ConfigSection<ServerSettings>([
        .key(
            "threads",
            .integer(0...256),
            .value("0"),
            .restart,
            "Event-loop threads; `0` is one per core."
        ) { .bare("\($0.threads)") },
        .key(
            "drain_timeout",
            .duration(positive: false),
            .value("30s"),
            .applies,
            "On SIGTERM/SIGINT: stop accepting, close every WebSocket with 1001, and close whatever is still open after this long."
        ) { duration($0.drainTimeout) },
        .key(
            "drain_spread",
            .duration(positive: false),
            .value("2s"),
            .applies,
            "The 1001 closes are spread at random over this window, so clients do not all reconnect at the same instant. Shorter than `drain_timeout`."
        ) { duration($0.drainSpread) },
        .key(
            "removed_route_grace",
            .durationOrNever,
            .value("never"),
            .applies,
            "After a reload removes a route, how long its open connections may go on before they are drained like at shutdown (1001 within `drain_spread`). `never`: they go on until they close by themselves; new upgrades to the path get **404** at once."
        ) { .bare($0.removedRouteGrace.map(ValueParsing.format) ?? "never") },
    ])

    /// `http`: the HTTP/1.1 side of every listener.
    static let http = ConfigSection<HTTPSettings>([
        .key(
            "max_header_bytes",
            .bytes(1024...(1 << 20)),
            .value("16KiB"),
            .newConnections,
            "Largest header block; past it the answer is **431**. The request line may add 8 KiB more, so an endless URL is refused (431) too."
        ) { .bare("\($0.maxHeaderBytes)") },
        .key(
            "header_timeout",
            .duration(positive: true),
            .value("10s"),
            .newConnections,
            "From the connection's start (TLS handshake included) or a request's first byte to the end of its header block, and again from there to the end of its body (the gateway reads no body: it is dropped); past either **408** (or a silent close if nothing arrived). The slowloris guard."
        ) { duration($0.headerTimeout) },
        .key(
            "idle_timeout",
            .duration(positive: true),
            .value("60s"),
            .newConnections,
            "How long a keep-alive connection may wait for its next request."
        ) { duration($0.idleTimeout) },
    ])

    /// `limits`: clients across all routes.
    static let limits = ConfigSection<LimitSettings>([
        .key(
            "max_connections",
            .integer(0...100_000_000),
            .value("0", note: "off"),
            .newConnections,
            "WebSocket connections open at once, all routes. Past it an upgrade gets **503** with `Retry-After: 5`."
        ) { .bare("\($0.maxConnections)") },
        .key(
            "max_connections_per_ip",
            .integer(0...100_000_000),
            .value("0", note: "off"),
            .newConnections,
            "The same, per client address: **503** with `Retry-After: 5`."
        ) { .bare("\($0.maxConnectionsPerIP)") },
        .key(
            "connections_per_second_per_ip",
            .rate,
            .value("0", note: "off"),
            .newConnections,
            "Upgrades per second a client address may start (a token bucket; fractions allowed). Past it **429** with `Retry-After` in whole seconds."
        ) { .bare("\($0.connectionsPerSecondPerIP)") },
        .key(
            "connection_burst_per_ip",
            .integer(1...1_000_000),
            .value("20"),
            .newConnections,
            "Upgrades an address may start at once before the rate applies."
        ) { .bare("\($0.connectionBurstPerIP)") },
        .key(
            "trusted_proxies",
            .list,
            .list([]),
            .newConnections,
            "Addresses and CIDR blocks (`10.0.0.0/8`, `::1/128`) of proxies in front of the gateway. When the peer is one of them, the client address is read from `Forwarded` (RFC 7239), else `X-Forwarded-For`, right to left, skipping trusted hops. From any other peer those headers are ignored. Workers see that address as `:peer`."
        ) { .list($0.trustedProxies.map(\.description)) },
    ])

    /// `admin`: the admin API's listener and token.
    static let admin = ConfigSection<AdminSettings>([
        .key(
            "address",
            .text,
            .value(AdminSettings.defaultAddress.description),
            .restart,
            "`unix:/path` (the socket is made with mode 0660: the gateway's user and group; its folder is created if missing), `host:port` (TCP: a token is then required), or `off`."
        ) {
            $0.isExplicit
                ? .quoted($0.address?.description ?? "off")
                : .comment("\"\(AdminSettings.defaultAddress.description)\" (the default)")
        },
        .key(
            "token",
            .secret,
            .unset("(none)"),
            .restart,
            "Bearer token every request must carry (`Authorization: Bearer …`): at least 16 printable ASCII characters. Required on TCP, optional on a Unix socket."
        ) { $0.tokenFile == nil ? $0.token.map(PrintedValue.secret) : nil },
        .key(
            "token_file",
            .text,
            .unset("(none)"),
            .restart,
            "A file holding the token (trailing newline ignored), instead of `token`: for systemd credentials or container secrets."
        ) { $0.tokenFile.map(PrintedValue.quoted) },
    ])

    /// `cluster`: topics and connections shared through Redis.
    static let cluster = ConfigSection<ClusterSettings>([
        .key(
            "redis",
            .text,
            .required("(none: a single gateway)"),
            .restart,
            "`redis://[user:password@]host[:port][/db]` or `unix:/path/to/redis.sock[?db=N&user=U&password=P]`. Redis 6 or later (RESP3)."
        ) { .quoted(RedisAddress.redacted($0.redis)) },
        .key(
            "node",
            .text,
            .unset("the host name"),
            .restart,
            "This gateway's name in the cluster: 1 to 64 letters, digits, `-`, `.` or `_`, unique among the nodes."
        ) { .quoted($0.node) },
        .key(
            "node_number",
            .integer(1...ClusterSettings.maxNodeNumber),
            .unset("derived from `node` (FNV-1a, 1–1023)"),
            .restart,
            "The top bits of this node's connection ids, 1 to 1023. A node whose number another live node holds stays unlinked and logs why: rename it or set this."
        ) { .bare("\($0.nodeNumber)") },
        .key(
            "presence_ttl",
            .duration(positive: true),
            .value(ValueParsing.format(ClusterSettings.defaultPresenceTTL)),
            .restart,
            "Presence entries and the node's registration expire this long after the node last refreshed them (every third of it): how long a node that died without saying goodbye still shows."
        ) { duration($0.presenceTTL) },
        .key(
            "degraded_readiness",
            .word(words(ClusterSettings.DegradedReadiness.self)),
            .value("ready"),
            .restart,
            "What `/readyz` answers while Redis cannot be reached: `ready` (200, \"ready, degraded: …\"; local delivery goes on) or `unready` (503 \"degraded: …\", so a load balancer sends new clients elsewhere)."
        ) { .bare($0.degradedReadiness.rawValue) },
        .key(
            "request_timeout",
            .duration(positive: true),
            .value("2s"),
            .restart,
            "How long an admin request for a connection on another node (and each Redis command) waits for its answer."
        ) { duration($0.requestTimeout) },
        .key(
            "prefix",
            .text,
            .value("wssgate"),
            .restart,
            "Prefix of every Redis key and channel, so several clusters can share one Redis."
        ) { .quoted($0.prefix) },
    ])

    static func duration(_ amount: TimeAmount) -> PrintedValue { .bare(ValueParsing.format(amount)) }

    static func words<T: CaseIterable & RawRepresentable>(_ type: T.Type) -> [String]
    where T.RawValue == String {
        T.allCases.map(\.rawValue)
    }
}

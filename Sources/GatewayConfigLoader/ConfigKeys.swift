import GatewayCore
import NIOCore
import RedisClient

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
        ) { .quoted(RedisEndpoint.redacted($0.redis)) },
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

    /// `listeners.<name>`.
    static let listener = ConfigSection<ListenerConfiguration>([
        .key(
            "address",
            .text,
            .required("(required)"),
            .applies,
            "`host:port` (IPv4), `[v6]:port`, `:port` (all IPv4 interfaces), `unix:/path`, or `fd:NAME`: a listening socket systemd passed (socket activation), by its `FileDescriptorName=` (`fd:https` for the shipped `wssgate.socket`) or its number (`fd:3`); a name no passed socket has stops start-up. Port `0` picks a free port (the bound address is logged: `msg=listening address=…`). A port below 1024 needs root or `CAP_NET_BIND_SERVICE`: under systemd, let the socket unit bind it. An address that cannot be bound stops start-up naming the listener, the address and why."
        ) { .quoted($0.address.description) },
        .key(
            "redirect_https",
            .integer(1...65535),
            .unset("—"),
            .newConnections,
            "On a plain listener: the https port to send browsers to. Every request but `/livez` and `/readyz` — WebSocket upgrades too — gets **308** with `Location: https://<host>[:port]<target>` (443 leaves the port out)."
        ) { $0.redirectHTTPSPort.map { .bare("\($0)") } },
        .section("tls", tls) { $0.tls },
        .section("proxy_protocol", proxyProtocol) { $0.proxyProtocol },
    ])

    /// `listeners.<name>.proxy_protocol`.
    static let proxyProtocol = ConfigSection<ProxyProtocolSettings>([
        .key(
            "trusted",
            .list,
            .unset("— (off)"),
            .newConnections,
            "Addresses and CIDR blocks of the load balancers in front of this listener (HAProxy `send-proxy`/`send-proxy-v2`, AWS NLB, …). A connection from one of them must start with a PROXY protocol header (v1 or v2), and the client it names is the connection's client for limits, logs, workers' `:peer` and `Forwarded`; a connection from any other address must not carry one. Either mistake closes the connection before TLS. On a Unix-socket listener every connection must carry a header."
        ) { .list($0.trusted.map(\.description)) }
    ])

    /// `listeners.<name>.tls`.
    static let tls = ConfigSection<TLSSettings>([
        .key(
            "certificate",
            .text,
            .unset("—"),
            .newConnections,
            "PEM certificate chain, leaf first: Let's Encrypt's `fullchain.pem`."
        ) { if case .files(let certificate, _) = $0.source { .quoted(certificate) } else { nil } },
        .key(
            "key",
            .text,
            .unset("—"),
            .newConnections,
            "PEM private key of the leaf (PKCS#8, SEC1 or PKCS#1; RSA or ECDSA): Let's Encrypt's `privkey.pem`."
        ) { if case .files(_, let key) = $0.source { .quoted(key) } else { nil } },
        .key(
            "self_signed",
            .valueOrList,
            .unset("—"),
            .newConnections,
            "`true` (for `localhost`, `127.0.0.1`, `::1`) or a list of DNS names and IP addresses: a certificate generated at start. Instead of `certificate`/`key`."
        ) { if case .selfSigned(let names) = $0.source { .list(names) } else { nil } },
        .section("acme", acme) { $0.acme },
        .key(
            "min_version",
            .word(words(TLSSettings.Version.self)),
            .value("1.2"),
            .newConnections,
            "`\"1.2\"` or `\"1.3\"`."
        ) { .quoted($0.minimumVersion.rawValue) },
        .named("certificates", sniCertificate) { $0.additional.map { ($0.name, $0) } },
        .key(
            "client_certificates",
            .word(words(TLSSettings.ClientCertificates.self)),
            .value("off"),
            .newConnections,
            "Mutual TLS: `required` (the handshake fails without a certificate that `client_ca` vouches for) or `optional` (a presented certificate must verify; clients without one are let in). The certificate's subject reaches workers as `:client_subject`."
        ) { .bare($0.clientCertificates.rawValue) },
        .key(
            "client_ca",
            .text,
            .unset("—"),
            .newConnections,
            "PEM bundle of the CAs that issue client certificates (needed with `client_certificates`)."
        ) { $0.clientCA.map(PrintedValue.quoted) },
        .key(
            "hsts",
            .text,
            .unset("—"),
            .newConnections,
            "A `Strict-Transport-Security` value (such as `max-age=63072000; includeSubDomains`) sent with this listener's HTTP answers."
        ) { $0.hsts.map(PrintedValue.quoted) },
        .key(
            "http2",
            .boolean,
            .value("false"),
            .newConnections,
            "HTTP/2 beside HTTP/1.1: ALPN offers `h2`, the gateway sends `SETTINGS_ENABLE_CONNECT_PROTOCOL`, and a WebSocket opens as an extended CONNECT stream (RFC 8441), on the same routes; plain requests (health, static files) are served on h2 too. Each stream is a session, many on one connection."
        ) { .bare($0.http2 ? "true" : "false") },
    ])

    /// `listeners.<name>.tls.certificates.<name>`: a certificate chosen by SNI.
    static let sniCertificate = ConfigSection<TLSSettings.Additional>([
        .key(
            "certificate",
            .text,
            .unset("—"),
            .newConnections,
            "More certificates on the same listener (a chain, as `certificate`), each chosen when the client's SNI matches one of its subjectAltName DNS names (exactly, or `*.example.com` for one label). The main `certificate` serves every other name and clients without SNI."
        ) { .quoted($0.certificate) },
        .key(
            "key",
            .text,
            .unset("—"),
            .newConnections,
            "That certificate's private key."
        ) { .quoted($0.key) },
    ])

    /// `listeners.<name>.tls.acme`: a certificate the gateway obtains itself.
    static let acme = ConfigSection<ACMESettings>([
        .key(
            "directory",
            .text,
            .required("(required with `acme`)"),
            .restart,
            "The ACME CA's directory URL (`https://` only), or a preset: `letsencrypt` or `letsencrypt-staging`. Instead of `certificate`/`key` and `self_signed`: the gateway obtains and renews the certificate itself ([certificates.md](certificates.md))."
        ) { .quoted($0.directory) },
        .key(
            "email",
            .text,
            .unset("—"),
            .restart,
            "Contact address for the account (the CA's expiry warnings)."
        ) { $0.email.map(PrintedValue.quoted) },
        .key(
            "domains",
            .valueOrList,
            .required("(required with `acme`)"),
            .restart,
            "The names the certificate is for (lower-cased; no wildcards: those need DNS-01). The first is its subject and its folder's name."
        ) { .list($0.domains) },
        .key(
            "storage",
            .text,
            .value(ACMESettings.defaultStorage),
            .restart,
            "Folder for the account key, the certificates and their keys (created 0700; keys 0600). Gateways sharing it never order at the same time (a lock file)."
        ) { .quoted($0.storage) },
        .key(
            "ca_bundle",
            .text,
            .unset("system trust store"),
            .restart,
            "PEM bundle of the CAs trusted for the ACME server's own HTTPS (Pebble, a private CA)."
        ) { $0.caBundle.map(PrintedValue.quoted) },
        .key(
            "challenges",
            .valueOrList,
            .list(ACMESettings.Challenge.allCases.map(\.rawValue)),
            .restart,
            "Challenge types offered, in order of preference. `tls-alpn-01` is answered on this listener (the CA connects to port 443); `http-01` on every plain listener (the CA asks port 80), before any `redirect_https`."
        ) { .list($0.challenges.map(\.rawValue)) },
        .key(
            "eab_kid",
            .text,
            .unset("—"),
            .restart,
            "External account binding key id, for CAs that require one (ZeroSSL, Google)."
        ) { $0.externalAccountKeyID.map(PrintedValue.quoted) },
        .key(
            "eab_hmac_key",
            .secret,
            .unset("—"),
            .restart,
            "Its HMAC key, base64url as the CA hands it out (printed as `\"[redacted]\"` by `check-config`)."
        ) { $0.externalAccountHMACKey.map(PrintedValue.secret) },
        .key(
            "retry_initial",
            .duration(positive: true),
            .value("60s"),
            .restart,
            "Wait after a failed order (at least `1s`); doubled after each failure in a row, with jitter, and never shorter than the CA's `Retry-After`."
        ) { duration($0.retryInitial) },
        .key(
            "retry_max",
            .duration(positive: true),
            .value("24h"),
            .restart,
            "The longest wait between failed orders."
        ) { duration($0.retryMax) },
    ])

    /// `routes.<name>`.
    static let route = ConfigSection<RouteConfiguration>([
        .key(
            "path",
            .text,
            .required("(required)"),
            .newConnections,
            "Exact path, starting with `/`; the query string is ignored for matching. `/livez` and `/readyz` are reserved."
        ) { .quoted($0.path) },
        .key(
            "kind",
            .word(words(RouteConfiguration.Kind.self)),
            .required("(required)"),
            .newConnections,
            "`echo`: every message is sent back with its type. `worker`: connections go to worker processes (below). `proxy`: connections pass through to an upstream WebSocket server (below). `hub`: clients subscribe and publish to hub topics themselves (below). `http`: each connection's events become HTTP requests to an app, whose answers carry commands (below, docs/http-backend.md)."
        ) { .bare($0.kind.rawValue) },
        .key(
            "subprotocols",
            .list,
            .list([]),
            .newConnections,
            "Subprotocols the route speaks, in order of preference; the first one the client also offers is selected."
        ) { .list($0.subprotocols) },
        .key(
            "origins",
            .list,
            .list([]),
            .newConnections,
            "Which web pages may connect, by the `Origin` browsers send: exact origins (`https://app.example.com`, `http://localhost:3000`), wildcard subdomains (`https://*.example.com`), or `*`. Empty: only pages from the gateway's own host (the request's `Host`). A refused origin gets **403**. Requests without `Origin` (non-browser clients) are not restricted by it."
        ) { .list($0.origins.allowed) },
        .key(
            "require_subprotocol",
            .boolean,
            .value("false"),
            .newConnections,
            "Refuse (400) clients that offer none of `subprotocols`."
        ) { .bare("\($0.requireSubprotocol)") },
        .key(
            "max_message_bytes",
            .bytes(125...(1 << 30)),
            .value("1MiB"),
            .newConnections,
            "Largest message after reassembly and decompression; past it the session closes with **1009**."
        ) { .bare("\($0.limits.maxMessageBytes)") },
        .key(
            "ping_interval",
            .duration(positive: true),
            .value("30s"),
            .newConnections,
            "A ping is sent after this long (up to twice this long) without hearing from the client."
        ) { duration($0.limits.pingInterval) },
        .key(
            "pong_timeout",
            .duration(positive: true),
            .value("30s"),
            .newConnections,
            "No answer within this long after the ping: close **1011** and drop TCP."
        ) { duration($0.limits.pongTimeout) },
        .key(
            "idle_timeout",
            .duration(positive: false),
            .value("0", note: "off"),
            .newConnections,
            "Close (**1000**, \"idle timeout\") after this long (up to twice this long) without a data message either way; `0` is off."
        ) { duration($0.limits.idleTimeout) },
        .key(
            "close_timeout",
            .duration(positive: true),
            .value("5s"),
            .newConnections,
            "After the gateway sends Close, how long the client has to answer before TCP is dropped."
        ) { duration($0.limits.closeTimeout) },
        .key(
            "send_queue_bytes",
            .bytes(1024...(1 << 30)),
            .value("1MiB"),
            .newConnections,
            "Bytes queued towards a client that is not reading before the gateway stops reading from it (back-pressure, never unbounded buffering). It is also the budget of messages pushed to the client (hub publishes, worker and admin sends)."
        ) { .bare("\($0.limits.sendQueueBytes)") },
        .key(
            "send_queue_overflow",
            .word(words(OverflowPolicy.self)),
            .value("close"),
            .newConnections,
            "What happens to a pushed message that finds the send queue full. `close`: the session is closed with `overflow_close_code`, so the client knows it missed messages. `drop-oldest`: the newest messages are kept within `send_queue_bytes` (one more if a single message is larger) and the oldest not yet written are dropped; order is kept. Messages the client's own requests cause (echo replies, hub acks) are never dropped: for those a full queue pauses reading instead."
        ) { .bare($0.limits.overflow.rawValue) },
        .key(
            "overflow_close_code",
            .word(["1013", "1008"]),
            .value("1013"),
            .newConnections,
            "The close code of the `close` policy: `1013` (try again later) or `1008` (policy violation)."
        ) { .bare("\($0.limits.overflowCloseCode.code)") },
        .key(
            "max_messages_per_second",
            .rate,
            .value("0", note: "off"),
            .newConnections,
            "Messages (and pings) per second a client may send on one connection, as a token bucket; past it the session is closed with **1008** (\"message rate limit\"). Fractions allowed."
        ) { .bare("\($0.limits.maxMessagesPerSecond)") },
        .key(
            "message_burst",
            .integer(1...1_000_000),
            .value("50"),
            .newConnections,
            "How many messages a connection may send at once before the rate applies."
        ) { .bare("\($0.limits.messageBurst)") },
        .section("compression", compression) { $0.compression },
        .section("auth", auth) { $0.auth },
        .section("static", files) { if case .static(let settings) = $0.backend { settings } else { nil } },
        .section("hub", hub) { if case .hub(let settings) = $0.backend { settings } else { nil } },
        .section("proxy", proxy) { if case .proxy(let settings) = $0.backend { settings } else { nil } },
        .section("http", httpBackend) { if case .http(let settings) = $0.backend { settings } else { nil } },
        .section("worker", worker) { if case .worker(let settings) = $0.backend { settings } else { nil } },
    ])

    /// `routes.<name>.compression`: permessage-deflate.
    static let compression = ConfigSection<CompressionSettings>([
        .key(
            "enabled",
            .boolean,
            .value("true"),
            .newConnections,
            "Negotiate permessage-deflate when the client offers it."
        ) { .bare("\($0.enabled)") },
        .key(
            "server_no_context_takeover",
            .boolean,
            .value("true"),
            .newConnections,
            "Reset the gateway's compressor after every message."
        ) { .bare("\($0.serverNoContextTakeover)") },
        .key(
            "client_no_context_takeover",
            .boolean,
            .value("true"),
            .newConnections,
            "Ask the client to reset its compressor after every message."
        ) { .bare("\($0.clientNoContextTakeover)") },
        .key(
            "server_max_window_bits",
            .integer(9...15),
            .value("15"),
            .newConnections,
            "The gateway's LZ77 window, 9–15 (an offer asking for 8 is declined: zlib cannot compress with it)."
        ) { .bare("\($0.serverMaxWindowBits)") },
        .key(
            "client_max_window_bits",
            .integer(9...15),
            .value("15"),
            .newConnections,
            "Window the client is asked to use, 9–15, when it says it can limit it."
        ) { .bare("\($0.clientMaxWindowBits)") },
        .key(
            "level",
            .integer(1...9),
            .value("6"),
            .newConnections,
            "zlib level 1–9."
        ) { .bare("\($0.level)") },
        .key(
            "memory_level",
            .integer(1...9),
            .value("8"),
            .newConnections,
            "zlib memLevel 1–9."
        ) { .bare("\($0.memoryLevel)") },
        .key(
            "min_message_bytes",
            .bytes(0...(1 << 30)),
            .value("64"),
            .newConnections,
            "Shorter messages are sent uncompressed."
        ) { .bare("\($0.minMessageBytes)") },
    ])

    /// `routes.<name>.auth`: a JWT on upgrade.
    static let auth = ConfigSection<JWTSettings>([
        .key(
            "hs256_secret",
            .secret,
            .unset("(none)"),
            .newConnections,
            "HS256 shared secret, at least 32 bytes."
        ) { $0.secretFile == nil ? $0.secrets.first.map(PrintedValue.secret) : nil },
        .key(
            "hs256_secret_file",
            .text,
            .unset("(none)"),
            .newConnections,
            "The same, read from a file (trailing newline ignored)."
        ) { $0.secretFile.map(PrintedValue.quoted) },
        .key(
            "public_keys",
            .list,
            .list([]),
            .newConnections,
            "PEM public key files: RSA (2048 bits or more) for RS256, P-256 for ES256."
        ) { $0.publicKeys.isEmpty ? nil : .list($0.publicKeys.map(\.path)) },
        .key(
            "jwks_file",
            .text,
            .unset("(none)"),
            .newConnections,
            "A JWKS document; every key needs `alg` (HS256, RS256 or ES256); tokens pick keys by `kid`."
        ) { $0.jwks.map { .quoted($0.path) } },
        .key(
            "algorithms",
            .list,
            .list(JWTSettings.Algorithm.allCases.map(\.rawValue)),
            .newConnections,
            "Algorithms accepted in a token's header. A token is checked only with keys of the algorithm it names, and only if that algorithm is listed and has keys, so `none` and HS/RS confusion are refused before any key is tried."
        ) { .list($0.algorithms.map(\.rawValue)) },
        .key(
            "issuer",
            .text,
            .unset("(none)"),
            .newConnections,
            "Required `iss`."
        ) { $0.issuer.map(PrintedValue.quoted) },
        .key(
            "audience",
            .list,
            .list([]),
            .newConnections,
            "The token's `aud` must name one of these (when any are set)."
        ) { .list($0.audiences) },
        .key(
            "leeway",
            .duration(positive: false),
            .value("30s"),
            .newConnections,
            "Clock skew allowed on `exp` and `nbf`."
        ) { duration($0.leeway) },
        .key(
            "token_from",
            .list,
            .list(JWTSettings.Source.allCases.map(\.rawValue)),
            .newConnections,
            "Where to look for the token, in order: `Authorization: Bearer …`; a `Sec-WebSocket-Protocol` entry `<protocol_prefix><token>`; a cookie; a query parameter."
        ) { .list($0.sources.map(\.rawValue)) },
        .key(
            "cookie",
            .text,
            .value("access_token"),
            .newConnections,
            "The cookie's name."
        ) { .quoted($0.cookieName) },
        .key(
            "query_parameter",
            .text,
            .value("access_token"),
            .newConnections,
            "The query parameter's name (redact it in logs with `log.redact_parameters`, which lists `access_token` by default)."
        ) { .quoted($0.queryParameter) },
        .key(
            "protocol_prefix",
            .text,
            .value("bearer."),
            .newConnections,
            "Prefix of the subprotocol entry that carries the token."
        ) { .quoted($0.protocolPrefix) },
    ])

    /// `routes.<name>.static`: files under a folder.
    static let files = ConfigSection<StaticSettings>([
        .key(
            "root",
            .text,
            .required("(required)"),
            .newConnections,
            "The folder; it must exist when the gateway starts. `builtin:demo` serves the demo page built into the binary (at the route's path and `index.html`), which the embedded default uses when no folder holds the page. Nothing outside it is served: `..` and `.` segments (also percent-encoded), hidden files and symbolic links that lead out of it all get **404**."
        ) { .quoted($0.root) },
        .key(
            "index",
            .text,
            .value("index.html"),
            .newConnections,
            "The file served for a directory."
        ) { .quoted($0.index) },
    ])

    /// `routes.<name>.hub`: what hub clients may do.
    static let hub = ConfigSection<HubRouteSettings>([
        .key(
            "subscribe",
            .list,
            .list(["*"]),
            .newSubscriptions,
            "Topics clients may subscribe to: exact names, `prefix.*` patterns, or `*`."
        ) { .list($0.subscribe) },
        .key(
            "publish",
            .list,
            .list([]),
            .newSubscriptions,
            "Topics clients may publish to (none by default)."
        ) { .list($0.publish) },
        .key(
            "client_script",
            .boolean,
            .value("false"),
            .newConnections,
            "Serve the browser client of this protocol, `wssgate.js` (reconnects and resumes by itself; docs/hub-protocol.md), at `/wssgate.js`."
        ) { .bare($0.clientScript ? "true" : "false") },
        .key(
            "presence",
            .boolean,
            .value("false"),
            .newConnections,
            "Let clients ask whether a user is online and on how many connections, cluster-wide (`{\"op\": \"presence\", \"user\": …}`, docs/hub-protocol.md). Off by default: it tells one user about another."
        ) { .bare($0.presence ? "true" : "false") },
        .section("history", history) { $0.history },
    ])

    /// `routes.<name>.hub.history`: topic history, so that clients resume after a reconnect.
    static let history = ConfigSection<HistorySettings>([
        .key(
            "size",
            .integer(0...1_000_000),
            .value("0", note: "off"),
            .restart,
            "Publications kept per topic, for clients that resume (`since` in a subscribe, docs/hub-protocol.md). `0`: no history (every other `history` key needs a size)."
        ) { .bare("\($0.size)") },
        .key(
            "topics",
            .list,
            .list(["*"]),
            .restart,
            "The topics that keep history: exact names, `prefix.*` patterns, or `*`. Where several routes' histories cover a topic, the first route's (in file order) applies."
        ) { .list($0.topics) },
        .key(
            "ttl",
            .duration(positive: true),
            .value("5m"),
            .restart,
            "How long a publication is kept; older ones are dropped when the topic is next published to or read."
        ) { duration($0.ttl) },
        .key(
            "max_bytes",
            .bytes(1024...(1 << 30)),
            .value("1MiB"),
            .restart,
            "Bytes kept per topic: the kept publications' payloads as subscribers get them (a hub client's publish counts its whole JSON event). A publication that would pass it drops the oldest ones; the newest always stays, even alone above it."
        ) { .bare("\($0.maxBytes)") },
        .key(
            "storage",
            .word(words(HistorySettings.Storage.self)),
            .value("memory"),
            .restart,
            "`memory`: a restart begins every topic on a new epoch (resuming clients get `recovered: false`). `file`: also an append-only file per route (`<directory>/<route>.history`), so a restart keeps every topic's epoch and publications."
        ) { .bare($0.storage.rawValue) },
        .key(
            "directory",
            .text,
            .unset("`$STATE_DIRECTORY` (systemd's `StateDirectory=`), else `/var/lib/wssgate`"),
            .restart,
            "Where `file` storage keeps the route's history file."
        ) { $0.directory.isEmpty ? nil : .quoted($0.directory) },
    ])

    /// `routes.<name>.proxy`: the upstream WebSocket server.
    static let proxy = ConfigSection<ProxySettings>([
        .key(
            "upstream",
            .text,
            .required("(required)"),
            .newConnections,
            "`ws://host:port/path`, or `unix:/path/to.sock` (request path `/`, or `unix:/path/to.sock#/ws`). The client's query string is appended."
        ) { .quoted($0.upstreamText) },
        .key(
            "connect_timeout",
            .duration(positive: true),
            .value("5s"),
            .newConnections,
            "No connection to the upstream within this long (or a refused one): **502**."
        ) { duration($0.connectTimeout) },
        .key(
            "handshake_timeout",
            .duration(positive: true),
            .value("10s"),
            .newConnections,
            "No complete upgrade answer from the upstream within this long: **504**."
        ) { duration($0.handshakeTimeout) },
        .key(
            "mode",
            .word(words(ProxyMode.self)),
            .value("bytes"),
            .newConnections,
            "`bytes`: after the upstream's 101 the bytes pass through unchanged (extensions and subprotocols negotiated end to end) — what nginx does. `frames`: the gateway ends the WebSocket on both legs and relays whole messages, so the route's limits, keepalive pings (towards the client and the upstream), idle timeout, per-message metrics, compression (ended at the gateway; the upstream leg is uncompressed), drain and the admin API's send and close apply to proxied connections. Close codes and reasons are relayed both ways."
        ) { .bare($0.mode.rawValue) },
        .key(
            "lost_close_code",
            .word(["1011", "1012"]),
            .value("1011"),
            .newConnections,
            "`frames` mode: the close code a client gets when its upstream connection ends without a closing handshake, or stops answering pings: `1011` (unexpected condition) or `1012` (service restart, for upstreams that are restarted on deploys)."
        ) { .bare("\($0.lostCloseCode.code)") },
    ])

    /// `routes.<name>.http`: the app that answers a connection's events (docs/http-backend.md).
    static let httpBackend = ConfigSection<HTTPBackendSettings>([
        .key(
            "url",
            .text,
            .required("(required)"),
            .newConnections,
            "Where every event is posted: `http://host:port/path?query`, or `unix:/path/to.sock` (request target `/`, or `unix:/path/to.sock#/ws`). HTTP/1.1 with keep-alive."
        ) { .quoted($0.urlText) },
        .key(
            "connections",
            .integer(1...1024),
            .value("16"),
            .newConnections,
            "Keep-alive connections to the app, at most, shared by the route's clients; requests beyond them wait for one."
        ) { .bare("\($0.connections)") },
        .key(
            "timeout",
            .duration(positive: true),
            .value("10s"),
            .newConnections,
            "No whole answer within this long: the request failed (retried when it may be, below)."
        ) { duration($0.timeout) },
        .key(
            "retries",
            .integer(0...100),
            .value("5"),
            .newConnections,
            "Attempts after the first, with backoff from 100 ms to 2 s, for `open` and `close` events and for any request that never reached the app (connection refused: the app is restarting). A `message` request the app may have seen is not sent again."
        ) { .bare("\($0.retries)") },
        .key(
            "queue_messages",
            .integer(1...100_000),
            .value("64"),
            .newConnections,
            "Client messages held per connection while the app has not taken them (one request in flight per connection); one more closes the client with `unavailable_close_code`."
        ) { .bare("\($0.queueMessages)") },
        .key(
            "queue_bytes",
            .bytes(1...268_435_456),
            .value("1MiB"),
            .newConnections,
            "The same bound in message bytes (one message is always taken)."
        ) { .bare("\($0.queueBytes)") },
        .key(
            "batch_messages",
            .integer(1...1000),
            .value("32"),
            .newConnections,
            "When more than one message waits (the app was slow), up to this many go in one `messages` request; `1` sends each in its own `message` request."
        ) { .bare("\($0.batchMessages)") },
        .key(
            "unavailable_close_code",
            .word(["1013", "1011", "1012"]),
            .value("1013"),
            .newConnections,
            "The close code a client gets when its messages cannot reach the app: its queue is full, retries are spent, or the app answered an event with an error status."
        ) { .bare("\($0.unavailableCloseCode.code)") },
        .key(
            "forward_headers",
            .list,
            .list(HTTPBackendSettings.defaultForwardHeaders),
            .newConnections,
            "Headers of the client's upgrade request passed on with every event (the app's session cookie, say)."
        ) { .list($0.forwardHeaders) },
        .key(
            "max_response_bytes",
            .bytes(1...268_435_456),
            .value("1MiB"),
            .newConnections,
            "The largest answer read from the app. A larger one is refused like an invalid answer, and not asked for again: to `open`, the client gets 502; to a message, the client is closed with 1011."
        ) { .bare("\($0.maxResponseBytes)") },
    ])

    /// `routes.<name>.worker`: worker processes.
    static let worker = ConfigSection<WorkerSettings>([
        .key(
            "command",
            .text,
            .unset("—"),
            .newConnections,
            "Executable to start (a bare name is looked up next to `wssgate`, then in `PATH`). It must exist when the gateway starts. Each instance gets its socket path in `WSSGATE_WORKER_SOCKET` and its name in `WSSGATE_WORKER_NAME`; its output goes to the gateway's log, a line per event, with the instance name."
        ) { if case .supervised(let command, _, _, _) = $0.source { .quoted(command) } else { nil } },
        .key(
            "args",
            .list,
            .list([]),
            .newConnections,
            "Arguments for `command`."
        ) { if case .supervised(_, let arguments, _, _) = $0.source { .list(arguments) } else { nil } },
        .key(
            "env",
            .list,
            .list([]),
            .newConnections,
            "Extra environment, as `NAME=value` entries. The gateway's own `WSSGATE_…` variables are not passed on."
        ) { if case .supervised(_, _, let environment, _) = $0.source { .list(environment) } else { nil } },
        .key(
            "instances",
            .integer(1...64),
            .value("1"),
            .newConnections,
            "How many copies of `command` to run (1–64); one per CPU is a good start. The gateway opens a link to each instance from every event-loop thread, and pins each connection to the instance with the fewest connections, over that instance's link on the connection's own thread (so a worker's reply needs no hop between threads)."
        ) { if case .supervised(_, _, _, let instances) = $0.source { .bare("\(instances)") } else { nil } },
        .key(
            "socket",
            .text,
            .unset("—"),
            .newConnections,
            "Instead of `command`: the absolute path of a worker's socket (a worker someone else runs)."
        ) { if case .external(let socket) = $0.source { .quoted(socket) } else { nil } },
        .key(
            "socket_dir",
            .text,
            .unset("private temp dir"),
            .newConnections,
            "Where supervised workers' sockets are made (mode 0700 when the gateway creates it)."
        ) { $0.socketDirectory.isEmpty ? nil : .quoted($0.socketDirectory) },
        .key(
            "authorize",
            .boolean,
            .value("false"),
            .newConnections,
            "Wait for the worker's `accept` or `reject` of each connection before answering the upgrade: a rejection becomes the HTTP status the worker chose."
        ) { .bare("\($0.authorize)") },
        .key(
            "authorize_timeout",
            .duration(positive: true),
            .value("5s"),
            .newConnections,
            "No verdict (or no live instance) within this long: **503**."
        ) { duration($0.authorizeTimeout) },
        .key(
            "resume_timeout",
            .duration(positive: false),
            .value("10s"),
            .newConnections,
            "A connection whose instance died waits this long for a live instance (its sibling, or the restarted one) before it is closed with **1013**."
        ) { duration($0.resumeTimeout) },
        .key(
            "forward_headers",
            .list,
            .list(["origin", "cookie", "authorization", "user-agent"]),
            .newConnections,
            "Request headers passed to the worker in `open`."
        ) { .list($0.forwardHeaders) },
        .key(
            "allowed_uids",
            .list,
            .unset("the gateway's own"),
            .newConnections,
            "User ids allowed to own a worker socket (checked with `SO_PEERCRED` on every link)."
        ) { .bareList($0.allowedUIDs.map(String.init)) },
        .key(
            "stop_timeout",
            .duration(positive: true),
            .value("10s"),
            .newConnections,
            "On shutdown, supervised workers get SIGTERM, then SIGKILL after this long."
        ) { duration($0.stopTimeout) },
        .key(
            "min_instances",
            .integer(0...64),
            .unset("`instances`"),
            .newConnections,
            "Supervised instances kept running however idle. Below `instances` the route **hibernates**: the others start when a connection needs a worker and none runs (at 0, the first message that needs one starts one), and stop after `idle_stop` without traffic while their clients stay connected (docs/worker-protocol.md, Hibernation)."
        ) { $0.minInstances.map { .bare("\($0)") } },
        .key(
            "idle_stop",
            .duration(positive: true),
            .value("5m"),
            .newConnections,
            "With `min_instances` below `instances`: an instance beyond the minimum that exchanged no frame with the gateway for this long is stopped; its connections are suspended (the worker answers `release`), keep their attachment, and stay connected."
        ) { duration($0.idleStop) },
        .key(
            "attachment_bytes",
            .bytes(0...32768),
            .value("2KiB"),
            .newConnections,
            "Largest attachment a worker may set on a connection (`attach`; handed back in `:attachment` of the next `open`). A larger one breaks the protocol: the link ends."
        ) { .bare("\($0.attachmentBytes)") },
        .key(
            "wake_queue_bytes",
            .bytes(1...16_777_216),
            .value("64KiB"),
            .newConnections,
            "Message bytes read from a client while no instance holds its connection (one is starting, or the connection is hibernated); beyond them the client's reads pause until an instance takes it. One message is always taken."
        ) { .bare("\($0.wakeQueueBytes)") },
        .key(
            "on_change",
            .word(words(WorkerSettings.ChangePolicy.self)),
            .value("finish"),
            .newConnections,
            "What a reload that changes the route's `command`, `args` or `env` (and nothing else of the route) does. `finish`: a new pool takes new connections while existing ones finish on the old one. `move`: a rolling deploy — the new instances start, every connection moves to them with its attachment (the worker sees a resumed `open`), and the old ones stop; no client sees a close (docs/worker-protocol.md, Rolling deploys)."
        ) { .bare($0.onChange.rawValue) },
        .section("auto_response", autoResponse) { $0 },
    ])

    /// `routes.<name>.worker.auto_response`: messages the gateway answers without the worker.
    static let autoResponse = ConfigSection<WorkerSettings>([
        .key(
            "requests",
            .list,
            .list([]),
            .newConnections,
            "Text messages the gateway answers itself, without waking (or asking) a worker: a message exactly equal to the n-th request gets the n-th of `responses` as a text message. Pings are answered by the gateway on every route anyway; this is for application-level heartbeats such as `{\"type\":\"ping\"}`."
        ) { .list($0.autoResponses.map(\.request)) },
        .key(
            "responses",
            .list,
            .list([]),
            .newConnections,
            "The answers, one per request, in the same order."
        ) { .list($0.autoResponses.map(\.response)) },
    ])

    private static func duration(_ amount: TimeAmount) -> PrintedValue { .bare(ValueParsing.format(amount)) }

    private static func words<T: CaseIterable & RawRepresentable>(_ type: T.Type) -> [String]
    where T.RawValue == String {
        T.allCases.map(\.rawValue)
    }
}

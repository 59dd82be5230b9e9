import GatewayCore
import NIOCore

/// The keys of `routes.<name>`: limits, compression, auth and static files.
extension ConfigKeys {
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
            "How many messages (and pings) a connection may send at once before their rates apply."
        ) { .bare("\($0.limits.messageBurst)") },
        .key(
            "max_pings_per_second",
            .rate,
            .value("10", note: "0: off"),
            .newConnections,
            "Pings per second a client may send on one connection, after `message_burst` at once: each ping costs a pong, so past it the session is closed with **1008** (\"ping rate limit\"). Libraries ping every few seconds at most."
        ) { .bare("\($0.limits.maxPingsPerSecond)") },
        .key(
            "max_inflated_bytes_per_second",
            .bytes(0...(1 << 40)),
            .value("16MiB", note: "0: off"),
            .newConnections,
            "Bytes per second a client's compressed messages may inflate to, after one megabyte at once. Past it the gateway stops reading from that client until the rate allows more (TCP back-pressure; nothing is closed or lost): a 1 KB frame can inflate to a megabyte, and every byte of it is work for the event loop the connection shares with others."
        ) { .bare("\($0.limits.maxInflatedBytesPerSecond)") },
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
}

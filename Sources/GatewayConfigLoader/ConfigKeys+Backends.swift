import GatewayCore
import NIOCore

/// The keys of the routes' backends: hub, history, proxy, http, worker.
extension ConfigKeys {
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
        .key(
            "max_subscriptions",
            .integer(1...100_000),
            .value("1000"),
            .newSubscriptions,
            "Subscriptions (topics and patterns) one connection may hold at once; one more is answered with an `error` and not made. Bounds what a client can make the hub keep for it."
        ) { .bare("\($0.maxSubscriptions)") },
        .key(
            "max_patterns",
            .integer(1...10_000_000),
            .value("100000"),
            .newSubscriptions,
            "Pattern subscriptions (`prefix.*`, `*`) the route's connections may hold at once, all together; one more is answered with an `error` and not made. Each costs the hub about 400 bytes: with `max_subscriptions` it bounds what many clients together can make it keep."
        ) { .bare("\($0.maxPatterns)") },
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
            "max_topics",
            .integer(1...10_000_000),
            .value("10000"),
            .restart,
            "Topics the route keeps history for at once — a subscribe begins a topic's stream as a publish does. Past it, topics are forgotten — those holding no publication first, then those begun or published to least recently — and a client resuming on one gets `recovered: false`. With `max_bytes`, it bounds the history's memory: at most `max_topics` × `max_bytes` of payloads."
        ) { .bare("\($0.maxTopics)") },
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
            "A connection whose instance died waits this long for a live instance (its sibling, or the restarted one) before it is closed with **1013**. The count starts at the loss of the last instance that kept the connection at least this long: instances that take it and die at once (a worker that breaks every link after its hello) do not start it again."
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
}

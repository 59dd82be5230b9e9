import NIOCore
import NIOWebSocket

/// A path and what serves it.
public struct RouteConfiguration: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        /// Sends every message back with its type: a conformance target and a smoke test.
        case echo
        /// Hands every connection to a pool of worker processes over the worker protocol.
        case worker
        /// Passes every connection through to an upstream WebSocket server, byte for byte.
        case proxy
        /// Clients use hub topics directly, through a small JSON protocol (docs/hub-protocol.md).
        case hub
        /// Each connection's events become HTTP requests to an app (docs/http-backend.md).
        case http
        /// Plain GET/HEAD of files under a folder (the demo page); `path` is a prefix.
        case `static`
    }

    /// What serves the route's connections, with the settings only that backend has: a route
    /// cannot be a proxy without an upstream, or hold a worker pool's settings as an echo.
    public enum Backend: Sendable, Equatable {
        case echo
        case worker(WorkerSettings)
        case proxy(ProxySettings)
        case hub(HubRouteSettings)
        case http(HTTPBackendSettings)
        case `static`(StaticSettings)

        public var kind: Kind {
            switch self {
            case .echo: .echo
            case .worker: .worker
            case .proxy: .proxy
            case .hub: .hub
            case .http: .http
            case .static: .static
            }
        }
    }

    /// Whether the route serves WebSocket upgrades (every kind but `static`).
    public var isWebSocket: Bool { kind != .static }

    public var name: String
    /// Exact path, starting with `/`; the query string is not part of the match.
    public var path: String
    public var backend: Backend
    /// The backend's kind: the word of the configuration, the logs and the metrics.
    public var kind: Kind { backend.kind }
    /// Subprotocols this route speaks, in order of preference. The first one the client also
    /// offers is selected; with none in common the upgrade goes on without one, unless
    /// `requireSubprotocol` is set (then 400).
    public var subprotocols: [String]
    public var requireSubprotocol: Bool
    public var limits: WebSocketLimits
    public var compression: CompressionSettings
    /// Which pages may connect (`Origin`); by default only the gateway's own host.
    public var origins: OriginPolicy
    /// A JWT required on upgrade (none: no authentication).
    public var auth: JWTSettings?

    public init(
        name: String,
        path: String,
        backend: Backend,
        subprotocols: [String] = [],
        requireSubprotocol: Bool = false,
        limits: WebSocketLimits = .init(),
        compression: CompressionSettings = .init(),
        origins: OriginPolicy = OriginPolicy(),
        auth: JWTSettings? = nil
    ) {
        self.name = name
        self.path = path
        self.backend = backend
        self.subprotocols = subprotocols
        self.requireSubprotocol = requireSubprotocol
        self.limits = limits
        self.compression = compression
        self.origins = origins
        self.auth = auth
    }
}

/// A `static` route's folder.
public struct StaticSettings: Sendable, Equatable {
    /// A `root` that names the demo page built into the binary rather than a folder.
    public static let builtinDemo = "builtin:demo"

    /// The folder served; nothing outside it is ever read (`..`, symbolic links out of it). Or
    /// `builtin:demo`: the demo page inside the binary.
    public var root: String
    /// The file served for a directory.
    public var index: String
    public init(root: String, index: String = "index.html") {
        self.root = root
        self.index = index
    }
}

/// Which topics a `hub` route's clients may use: exact topics, `prefix.*` patterns, or `*`.
public struct HubRouteSettings: Sendable, Equatable {
    public var subscribe: [String]
    public var publish: [String]
    /// Topic history (off when nil): publications kept so that a client that reconnects
    /// resumes where it stood (docs/hub-protocol.md, Resume).
    public var history: HistorySettings?
    /// Whether the gateway serves the browser client, `wssgate.js`, at `/wssgate.js`.
    public var clientScript: Bool
    /// Whether clients may ask whether a user is online, and on how many connections (the
    /// `presence` op): off by default, as it tells one user about another.
    public var presence: Bool
    /// Subscriptions one connection may hold at once (topics and patterns).
    public var maxSubscriptions: Int
    /// Pattern subscriptions the route's connections may hold at once, all together.
    public var maxPatterns: Int
    public init(
        subscribe: [String] = ["*"],
        publish: [String] = [],
        history: HistorySettings? = nil,
        clientScript: Bool = false,
        presence: Bool = false,
        maxSubscriptions: Int = 1000,
        maxPatterns: Int = 100_000
    ) {
        self.subscribe = subscribe
        self.publish = publish
        self.history = history
        self.clientScript = clientScript
        self.presence = presence
        self.maxSubscriptions = maxSubscriptions
        self.maxPatterns = maxPatterns
    }

    /// Whether a rule allows a requested topic or pattern (`a.*` allows `a.b` and `a.b.*`).
    public static func allows(_ rules: [String], _ requested: String) -> Bool {
        rules.contains { rule in
            if rule == "*" { return true }
            if rule.hasSuffix(".*") {
                let prefix = rule.dropLast()
                return requested.hasPrefix(prefix) && requested != String(prefix)
            }
            return rule == requested
        }
    }

    /// A topic or pattern: non-empty, at most 255 bytes, no spaces or control characters, and
    /// `*` only as a whole last segment.
    public static func isValidTopic(_ topic: String, allowPattern: Bool) -> Bool {
        // `$…` topics are the gateway's own (users and tags).
        guard !topic.isEmpty, topic.utf8.count <= 255, topic.utf8.first != UInt8(ascii: "$"),
            !topic.unicodeScalars.contains(where: { $0 == " " || NameCharacters.isForbidden($0) })
        else { return false }
        if topic == "*" || topic.hasSuffix(".*") {
            return allowPattern && !topic.dropLast().contains("*")
        }
        return !topic.contains("*")
    }
}

/// The limits and timers of one WebSocket session.
public struct WebSocketLimits: Sendable, Equatable {
    /// Largest message after reassembly and decompression; past it the session closes with 1009.
    public var maxMessageBytes: Int
    /// A ping is sent after this long without hearing from the client…
    public var pingInterval: TimeAmount
    /// …and the session is closed (1011) when nothing arrives within this long after it.
    public var pongTimeout: TimeAmount
    /// Close (1000) after this long without a data message either way; zero turns it off.
    public var idleTimeout: TimeAmount
    /// How long to wait for the client's Close after sending ours before dropping TCP.
    public var closeTimeout: TimeAmount
    /// Bytes queued towards a client that is not reading before reads from it pause
    /// (the high watermark of the channel's write buffer).
    public var sendQueueBytes: Int
    /// What happens to messages pushed to a client (hub publishes, worker and admin sends) once
    /// its send queue is full: the gateway cannot slow the sender down for one client.
    public var overflow: OverflowPolicy
    /// The close code of the `close` policy: 1013 (try again later) or 1008 (policy violation).
    public var overflowCloseCode: WebSocketErrorCode
    /// Messages per second a client may send on one connection (a token bucket of
    /// `messageBurst`); past it the session is closed with 1008. Zero: no limit.
    public var maxMessagesPerSecond: Double
    public var messageBurst: Int
    /// Pings per second a client may send (a token bucket of `messageBurst`): each one costs a
    /// pong, so past it the session is closed with 1008. Zero: no limit.
    public var maxPingsPerSecond: Double
    /// Bytes per second the client's compressed messages may inflate to. Past it the session
    /// stops reading until the rate allows more (a 1 KB frame can inflate to a megabyte, and
    /// every byte of it is work for the event loop). Zero: no limit.
    public var maxInflatedBytesPerSecond: Int

    public init(
        maxMessageBytes: Int = 1 << 20,
        pingInterval: TimeAmount = .seconds(30),
        pongTimeout: TimeAmount = .seconds(30),
        idleTimeout: TimeAmount = .zero,
        closeTimeout: TimeAmount = .seconds(5),
        sendQueueBytes: Int = 1 << 20,
        overflow: OverflowPolicy = .close,
        overflowCloseCode: WebSocketErrorCode = .tryAgainLater,
        maxMessagesPerSecond: Double = 0,
        messageBurst: Int = 50,
        maxPingsPerSecond: Double = 10,
        maxInflatedBytesPerSecond: Int = 16 << 20
    ) {
        self.maxPingsPerSecond = maxPingsPerSecond
        self.maxInflatedBytesPerSecond = maxInflatedBytesPerSecond
        self.maxMessagesPerSecond = maxMessagesPerSecond
        self.messageBurst = messageBurst
        self.maxMessageBytes = maxMessageBytes
        self.pingInterval = pingInterval
        self.pongTimeout = pongTimeout
        self.idleTimeout = idleTimeout
        self.closeTimeout = closeTimeout
        self.sendQueueBytes = sendQueueBytes
        self.overflow = overflow
        self.overflowCloseCode = overflowCloseCode
    }
}

/// A full send queue's policy for pushed messages.
public enum OverflowPolicy: String, Sendable, Equatable, CaseIterable {
    /// Close the session (`overflow_close_code`): the client learns it missed messages.
    case close
    /// Keep the newest messages within the budget and drop the oldest not yet written: for
    /// feeds where only the latest state matters (prices, positions).
    case dropOldest = "drop-oldest"
}

/// permessage-deflate (RFC 7692) as this route offers it.
///
/// The defaults ask both sides to reset their compression context after every message
/// (`*_no_context_takeover`). That costs some ratio on small, repetitive messages, but it lets
/// the gateway hold no zlib state at all on an idle connection — about 300 KB per connection
/// otherwise — which is the right trade for a gateway holding many connections.
public struct CompressionSettings: Sendable, Equatable {
    public var enabled: Bool
    public var serverNoContextTakeover: Bool
    public var clientNoContextTakeover: Bool
    /// LZ77 window of the gateway's compressor, 9…15 (zlib cannot do 8).
    public var serverMaxWindowBits: Int
    /// Window the client is asked to use, 9…15, when it says it can limit it.
    public var clientMaxWindowBits: Int
    /// zlib level 1…9.
    public var level: Int
    /// zlib memLevel 1…9 (memory of the compressor's hash tables).
    public var memoryLevel: Int
    /// Messages shorter than this go out uncompressed: deflate does not pay below it.
    public var minMessageBytes: Int

    public init(
        enabled: Bool = true,
        serverNoContextTakeover: Bool = true,
        clientNoContextTakeover: Bool = true,
        serverMaxWindowBits: Int = 15,
        clientMaxWindowBits: Int = 15,
        level: Int = 6,
        memoryLevel: Int = 8,
        minMessageBytes: Int = 64
    ) {
        self.enabled = enabled
        self.serverNoContextTakeover = serverNoContextTakeover
        self.clientNoContextTakeover = clientNoContextTakeover
        self.serverMaxWindowBits = serverMaxWindowBits
        self.clientMaxWindowBits = clientMaxWindowBits
        self.level = level
        self.memoryLevel = memoryLevel
        self.minMessageBytes = minMessageBytes
    }
}

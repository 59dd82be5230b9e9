import NIOCore

/// The whole, validated configuration of one gateway process.
///
/// Values only: nothing here opens a file or a socket. The loader in `GatewayConfigLoader` builds
/// it from YAML, environment and flags (and from its embedded default when there is no file).
public struct GatewayConfiguration: Sendable, Equatable {
    public var log: LogSettings
    public var server: ServerSettings
    public var http: HTTPSettings
    /// Listeners, sorted by name so that the order never depends on a dictionary.
    public var listeners: [ListenerConfiguration]
    /// Routes, sorted by name.
    public var routes: [RouteConfiguration]
    public var admin: AdminSettings
    public var limits: LimitSettings
    /// nil: a single gateway (the default).
    public var cluster: ClusterSettings?

    public init(
        log: LogSettings = .init(),
        server: ServerSettings = .init(),
        http: HTTPSettings = .init(),
        listeners: [ListenerConfiguration],
        routes: [RouteConfiguration],
        admin: AdminSettings = .init(),
        limits: LimitSettings = .init(),
        cluster: ClusterSettings? = nil
    ) {
        self.cluster = cluster
        self.limits = limits
        self.admin = admin
        self.log = log
        self.server = server
        self.http = http
        self.listeners = listeners.sorted { $0.name < $1.name }
        self.routes = routes.sorted { $0.name < $1.name }
    }
}

/// Log output.
public struct LogSettings: Sendable, Equatable {
    public enum Format: String, Sendable, CaseIterable { case logfmt, json }
    public enum Level: String, Sendable, CaseIterable { case trace, debug, info, notice, warning, error, critical }
    public static let defaultRedactedParameters = [
        "token", "access_token", "id_token", "refresh_token", "jwt", "api_key", "apikey", "password", "secret",
        "client_secret", "signature",
    ]
    public var level: Level
    public var format: Format
    /// Query parameters and `name=value` fields whose values never reach the log (besides
    /// Authorization, Cookie and anything shaped like a JWT, which are always redacted).
    public var redactParameters: [String]
    public init(
        level: Level = .info,
        format: Format = .logfmt,
        redactParameters: [String] = LogSettings.defaultRedactedParameters
    ) {
        self.level = level
        self.format = format
        self.redactParameters = redactParameters
    }
}

/// Process-wide settings.
public struct ServerSettings: Sendable, Equatable {
    /// Event-loop threads; 0 means one per core.
    public var threads: Int
    /// How long a drain (SIGTERM) may take before what is left is closed.
    public var drainTimeout: TimeAmount
    /// WebSockets are closed (1001) at random moments within this window after a drain starts,
    /// so their clients do not all reconnect at the same instant.
    public var drainSpread: TimeAmount
    /// After a reload removes a route, how long its open connections may go on before they are
    /// drained with 1001; nil (the default, `never`): until they close by themselves.
    public var removedRouteGrace: TimeAmount?
    public init(
        threads: Int = 0,
        drainTimeout: TimeAmount = .seconds(30),
        drainSpread: TimeAmount = .seconds(2),
        removedRouteGrace: TimeAmount? = nil
    ) {
        self.threads = threads
        self.drainTimeout = drainTimeout
        self.drainSpread = drainSpread
        self.removedRouteGrace = removedRouteGrace
    }
}

/// Limits of the HTTP/1.1 side, shared by every listener.
public struct HTTPSettings: Sendable, Equatable {
    /// Largest header block (names and values) accepted; past it the answer is 431. The request
    /// line is bounded by the same figure, so a client cannot stream an endless URL either.
    public var maxHeaderBytes: Int
    /// Time allowed from the first byte of a request (or the connection's start) to the end of its
    /// header block: the slowloris guard.
    public var headerTimeout: TimeAmount
    /// How long a keep-alive connection may sit between requests.
    public var idleTimeout: TimeAmount
    public init(
        maxHeaderBytes: Int = 16 * 1024,
        headerTimeout: TimeAmount = .seconds(10),
        idleTimeout: TimeAmount = .seconds(60)
    ) {
        self.maxHeaderBytes = maxHeaderBytes
        self.headerTimeout = headerTimeout
        self.idleTimeout = idleTimeout
    }
}

import NIOCore
import NIOWebSocket

/// An `http` route's application: each connection's events (`open`, `message`, `close`) become
/// HTTP requests to it, and its answers carry commands (docs/http-backend.md). The app keeps
/// its own web stack — PHP under any server, a WSGI app, Rails — and holds no connection open.
public struct HTTPBackendSettings: Sendable, Equatable {
    /// Where the app listens.
    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    public var endpoint: Endpoint
    /// The request target every event is posted to (path and query of `url`).
    public var path: String
    /// `Host` sent to the app.
    public var hostHeader: String
    /// Keep-alive connections to the app, at most (shared by the route's clients).
    public var connections: Int
    /// No whole answer within this long: the request failed.
    public var timeout: TimeAmount
    /// Attempts after the first, for requests that can be sent again: `open` and `close`
    /// (idempotent), and any request that never reached the app (refused connection).
    public var retries: Int
    /// Client messages held per connection while the app has not answered, at most; one more
    /// closes the client with `unavailableCloseCode`.
    public var queueMessages: Int
    /// The same bound in bytes.
    public var queueBytes: Int
    /// Messages sent in one request when more than one waits (the app was slow); 1 sends each
    /// on its own.
    public var batchMessages: Int
    /// The close code a client gets when its messages cannot reach the app (queue full,
    /// retries spent, an error answer): 1013 (try again later) by default.
    public var unavailableCloseCode: WebSocketErrorCode
    /// Request headers of the upgrade passed on with every event (lower case).
    public var forwardHeaders: [String]
    /// The largest answer read; a larger one is an error answer.
    public var maxResponseBytes: Int

    public init(
        endpoint: Endpoint,
        path: String = "/",
        hostHeader: String = "localhost",
        connections: Int = 16,
        timeout: TimeAmount = .seconds(10),
        retries: Int = 5,
        queueMessages: Int = 64,
        queueBytes: Int = 1 << 20,
        batchMessages: Int = 32,
        unavailableCloseCode: WebSocketErrorCode = WebSocketErrorCode(code: 1013),
        forwardHeaders: [String] = Self.defaultForwardHeaders,
        maxResponseBytes: Int = 1 << 20
    ) {
        self.endpoint = endpoint
        self.path = path
        self.hostHeader = hostHeader
        self.connections = connections
        self.timeout = timeout
        self.retries = retries
        self.queueMessages = queueMessages
        self.queueBytes = queueBytes
        self.batchMessages = batchMessages
        self.unavailableCloseCode = unavailableCloseCode
        self.forwardHeaders = forwardHeaders
        self.maxResponseBytes = maxResponseBytes
    }

    /// What an app usually needs to know who is asking: its session cookie, a bearer token,
    /// the browser and the page.
    public static let defaultForwardHeaders = ["cookie", "authorization", "user-agent", "origin"]

    /// `url` as written: `http://host:port/path` or `unix:/path/to.sock` (`#/path` for a
    /// request target other than `/`).
    public var urlText: String {
        switch endpoint {
        case .tcp: "http://\(hostHeader)\(path)"
        case .unix(let socket): path == "/" ? "unix:\(socket)" : "unix:\(socket)#\(path)"
        }
    }

    /// Reads `http://host[:port]/path?query` or `unix:/socket[#/path]`.
    public static func parseURL(_ text: String) -> (Endpoint, path: String, host: String)? {
        if text.hasPrefix("unix:") {
            let parts = text.dropFirst(5).split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)
            guard let socket = parts.first, socket.hasPrefix("/") else { return nil }
            let path = parts.count > 1 && parts[1].hasPrefix("/") ? String(parts[1]) : "/"
            return (.unix(path: String(socket)), path, "localhost")
        }
        guard text.hasPrefix("http://") else { return nil }
        let rest = text.dropFirst(7)
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        var path = String(rest.dropFirst(authority.count))
        if path.isEmpty { path = "/" } else if path.hasPrefix("?") { path = "/" + path }
        guard !authority.contains("@"), let (host, port) = HostPort.parse(authority, defaultPort: 80) else {
            return nil
        }
        return (.tcp(host: host, port: port), path, String(authority))
    }
}

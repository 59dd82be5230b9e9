import NIOCore
import NIOWebSocket

/// A `proxy` route's upstream: the classic nginx-in-front-of-a-WebSocket-server setup, without
/// nginx.
public struct ProxySettings: Sendable, Equatable {
    public enum Upstream: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }
    public var upstream: Upstream
    /// The request path sent upstream (the client's query string is appended).
    public var path: String
    /// `Host` sent upstream.
    public var hostHeader: String
    /// No connection within this long: 502.
    public var connectTimeout: TimeAmount
    /// No complete upgrade answer within this long: 504.
    public var handshakeTimeout: TimeAmount
    /// Whether the gateway passes bytes through or terminates the WebSocket on both legs.
    public var mode: ProxyMode
    /// `frames` mode: the close code a client gets when its upstream connection ends without a
    /// closing handshake (1011 unexpected condition, or 1012 service restart).
    public var lostCloseCode: WebSocketErrorCode

    public init(
        upstream: Upstream,
        path: String,
        hostHeader: String,
        connectTimeout: TimeAmount = .seconds(5),
        handshakeTimeout: TimeAmount = .seconds(10),
        mode: ProxyMode = .bytes,
        lostCloseCode: WebSocketErrorCode = .unexpectedServerError
    ) {
        self.upstream = upstream
        self.path = path
        self.hostHeader = hostHeader
        self.connectTimeout = connectTimeout
        self.handshakeTimeout = handshakeTimeout
        self.mode = mode
        self.lostCloseCode = lostCloseCode
    }

    /// The upstream as it is written in the file: `ws://host:port/path`, `unix:/path#/target`.
    public var upstreamText: String {
        switch upstream {
        case .tcp: "ws://\(hostHeader)\(path)"
        case .unix(let socket): "unix:\(socket)#\(path)"
        }
    }

    /// Parses `ws://host:port/path` or `unix:/socket/path` (then the request path is `/`, or
    /// what follows `#`: `unix:/run/app.sock#/ws`).
    public static func parseUpstream(_ text: String) -> (Upstream, path: String, host: String)? {
        if text.hasPrefix("unix:") {
            let rest = text.dropFirst(5)
            let parts = rest.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)
            guard let socket = parts.first, socket.hasPrefix("/") else { return nil }
            let path = parts.count > 1 && parts[1].hasPrefix("/") ? String(parts[1]) : "/"
            return (.unix(path: String(socket)), path, "localhost")
        }
        guard text.hasPrefix("ws://") else { return nil }
        let rest = text.dropFirst(5)
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count)
        guard let (host, port) = HostPort.parse(authority, defaultPort: 80) else { return nil }
        return (.tcp(host: host, port: port), path.isEmpty ? "/" : String(path), String(authority))
    }
}

/// How a `proxy` route relays a connection.
public enum ProxyMode: String, Sendable, Equatable, CaseIterable {
    /// Byte-exact pass-through after the upstream's 101: extensions and subprotocols are
    /// negotiated end to end, and the gateway does not look at frames.
    case bytes
    /// The WebSocket ends at the gateway on both legs and whole messages are relayed, so the
    /// route's limits, keepalive, metrics, compression and the admin API apply to proxied
    /// traffic as to any session.
    case frames
}

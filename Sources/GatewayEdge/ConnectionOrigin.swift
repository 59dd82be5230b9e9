import NIOCore

/// Who a connection's client is, when a PROXY protocol header said so: written by
/// `ProxyProtocolHandler` before the first request byte is read, read by the HTTP handler (which
/// may be added later: after the ClientHello, on a listener that answers TLS-ALPN-01). One
/// event loop owns both. Only listeners with `proxy_protocol` make one.
final class ConnectionOrigin {
    /// The client the header named; nil when it named none (LOCAL, UNKNOWN, a Unix source).
    var client: SocketAddress?

    init() {}
}

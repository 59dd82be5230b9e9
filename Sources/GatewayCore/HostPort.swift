/// The host and port of a URL's authority (`host`, `host:port`, `[v6]`, `[v6]:port`), as the
/// `ws://` upstreams of proxy routes and the `http://` apps of http routes are written.
public enum HostPort {
    /// Nil for an empty host, a port outside 1–65535, or text after `]` that is not `:port`.
    public static func parse<S: StringProtocol>(_ authority: S, defaultPort: Int) -> (host: String, port: Int)? {
        let host: String
        let port: Int
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            guard after.isEmpty || after.hasPrefix(":") else { return nil }
            port = after.isEmpty ? defaultPort : (Int(after.dropFirst()) ?? -1)
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            port = Int(authority[authority.index(after: colon)...]) ?? -1
        } else {
            host = String(authority)
            port = defaultPort
        }
        guard !host.isEmpty, (1...65535).contains(port) else { return nil }
        return (host, port)
    }
}

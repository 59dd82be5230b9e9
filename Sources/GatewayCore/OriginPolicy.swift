/// Which web pages may open WebSockets on a route (the `Origin` a browser sends with every
/// upgrade): the defence against cross-site WebSocket hijacking.
///
/// Entries are exact origins (`https://app.example.com`, `http://localhost:3000`), wildcard
/// subdomains (`https://*.example.com`: one or more labels in front of `example.com`), or `*`.
/// With no entries only pages served by the gateway's own host (the request's `Host`) may
/// connect. Requests without `Origin` come from non-browser clients and are not restricted.
public struct OriginPolicy: Sendable, Equatable {
    public var allowed: [String]

    public init(allowed: [String] = []) {
        self.allowed = allowed.map { $0.lowercased() }
    }

    /// Whether an entry is well formed: `*`, or `scheme://host[:port]` with an optional leading
    /// `*.` on the host, and nothing after.
    public static func isValidEntry(_ entry: String) -> Bool {
        if entry == "*" { return true }
        guard let origin = Origin(parsing: entry.lowercased()) else { return false }
        let host = origin.host.hasPrefix("*.") ? String(origin.host.dropFirst(2)) : origin.host
        return !host.isEmpty && !host.contains("*")
    }

    public func allows(origin text: String?, host: String?) -> Bool {
        guard let text else { return true }
        guard let origin = Origin(parsing: text.lowercased()) else { return false }
        if allowed.isEmpty {
            guard let host else { return false }
            return origin.authority == Origin.normalizedAuthority(host.lowercased(), scheme: origin.scheme)
        }
        for entry in allowed {
            if entry == "*" { return true }
            guard let pattern = Origin(parsing: entry), pattern.scheme == origin.scheme, pattern.port == origin.port
            else { continue }
            if pattern.host.hasPrefix("*.") {
                let suffix = pattern.host.dropFirst(1)  // ".example.com"
                if origin.host.hasSuffix(suffix) && origin.host.count > suffix.count { return true }
            } else if pattern.host == origin.host {
                return true
            }
        }
        return false
    }

    /// `scheme://host[:port]`, the port made explicit.
    struct Origin: Equatable {
        var scheme: String
        var host: String
        var port: Int

        init?(parsing text: String) {
            let parts = text.split(separator: "://", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { return nil }
            scheme = String(parts[0])
            guard ["http", "https", "ws", "wss"].contains(scheme) else { return nil }
            let authority = String(parts[1])
            guard !authority.isEmpty, !authority.contains("/"), !authority.contains("@") else { return nil }
            let defaultPort = scheme == "http" || scheme == "ws" ? 80 : 443
            if authority.hasPrefix("[") {
                guard let close = authority.firstIndex(of: "]") else { return nil }
                host = String(authority[...close])
                let rest = authority[authority.index(after: close)...]
                if rest.isEmpty {
                    port = defaultPort
                } else {
                    guard rest.hasPrefix(":"), let value = Int(rest.dropFirst()) else { return nil }
                    port = value
                }
            } else if let colon = authority.lastIndex(of: ":") {
                host = String(authority[..<colon])
                guard let value = Int(authority[authority.index(after: colon)...]) else { return nil }
                port = value
            } else {
                host = authority
                port = defaultPort
            }
            guard !host.isEmpty, (1...65535).contains(port) else { return nil }
        }

        var authority: String { "\(host):\(port)" }

        /// A `Host` header's value with its port made explicit for the origin's `scheme`.
        static func normalizedAuthority(_ host: String, scheme: String) -> String {
            let defaultPort = scheme == "http" || scheme == "ws" ? "80" : "443"
            if host.hasPrefix("[") {
                return host.hasSuffix("]") ? host + ":" + defaultPort : host
            }
            return host.contains(":") ? host : host + ":" + defaultPort
        }
    }
}

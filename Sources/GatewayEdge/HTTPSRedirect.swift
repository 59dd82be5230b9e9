import GatewayTLS

/// A plain listener's move to https: the location a request is sent to, for a host the gateway
/// serves only. Copying any `Host` into `Location` would make the gateway an open redirect (a
/// link to it that lands anywhere); a host that none of its certificates names, nor
/// `redirect_hosts`, gets 421 instead.
struct HTTPSRedirect: Sendable {
    var port: Int
    /// The hosts the location may name, read when a request comes: a renewal or a reload changes
    /// the certificates.
    var hosts: @Sendable () -> CertificateHosts

    enum Outcome: Equatable {
        case moved(location: String)
        /// The host is not the gateway's (RFC 9110 §15.5.20: 421 Misdirected Request).
        case misdirected
        /// The target is not a path (`@host`, an absolute URI to another host): 400.
        case badTarget
    }

    /// Where `target` (the request line's) on `host` (the Host header's value) moves to.
    func outcome(host hostHeader: String, target: String) -> Outcome {
        let host = RequestRouter.hostWithoutPort(hostHeader).lowercased()
        guard !host.isEmpty, hosts().covers(host) else { return .misdirected }
        // Only a path follows the authority: `@evil.test` would make the host userinfo.
        guard target.hasPrefix("/"), !target.hasPrefix("//") else { return .badTarget }
        return .moved(location: "https://" + host + (port == 443 ? "" : ":\(port)") + target)
    }
}

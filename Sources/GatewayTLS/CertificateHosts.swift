/// The hosts a set of certificates is for: their subjectAltName DNS names (a `*.` wildcard
/// standing for one label) and IP addresses. A plain listener redirects only to these, so a
/// request's `Host` cannot send a browser anywhere else.
public struct CertificateHosts: Sendable, Equatable {
    public private(set) var dnsNames: [String]
    /// Addresses as their 4 or 16 bytes: `[::1]` and `[0:0::1]` are the same host.
    public private(set) var ipAddresses: [[UInt8]]

    public init(dnsNames: [String] = [], ipAddresses: [[UInt8]] = []) {
        self.dnsNames = dnsNames.map { $0.lowercased() }
        self.ipAddresses = ipAddresses
    }

    /// The names and addresses in `list` (what `redirect_hosts` or `self_signed` holds).
    public init(names list: [String]) {
        self.init()
        for name in list {
            if let address = IPAddressBytes(name) {
                ipAddresses.append(address)
            } else {
                dnsNames.append(name.lowercased())
            }
        }
    }

    public mutating func formUnion(_ other: CertificateHosts) {
        dnsNames += other.dnsNames.filter { !dnsNames.contains($0) }
        ipAddresses += other.ipAddresses.filter { !ipAddresses.contains($0) }
    }

    /// Whether `host` (a `Host` header's host, without its port: a DNS name, an IPv4 address
    /// or a bracketed IPv6 one) is one of these.
    public func covers(_ host: String) -> Bool {
        if host.hasPrefix("["), host.hasSuffix("]") {
            guard let address = IPAddressBytes(String(host.dropFirst().dropLast())) else { return false }
            return ipAddresses.contains(address)
        }
        if let address = IPAddressBytes(host) { return address.count == 4 && ipAddresses.contains(address) }
        return ServerTLS.covers(dnsNames, host.lowercased())
    }
}

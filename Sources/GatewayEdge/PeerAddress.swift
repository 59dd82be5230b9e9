import NIOCore

/// Short, log-friendly peer addresses: `127.0.0.1:5000`, `[::1]:5000`, `unix`.
enum PeerAddress {
    static func describe(_ address: SocketAddress?) -> String {
        guard let address else { return "unknown" }
        switch address {
        case .v4:
            return "\(address.ipAddress ?? "?"):\(address.port ?? 0)"
        case .v6:
            return "[\(address.ipAddress ?? "?")]:\(address.port ?? 0)"
        case .unixDomainSocket:
            return "unix"
        }
    }
}

import Configuration
import GatewayCore
import NIOCore
import NIOWebSocket

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Listeners, their TLS and ACME sections.
extension ConfigurationBuilder {
    // MARK: Sections

    func listener(_ name: String) throws(ConfigurationError) -> ListenerConfiguration {
        let base = ["listeners", name]
        let addressText = try required(base + ["address"])
        let address: ListenAddress
        do {
            address = try ListenAddress(parsing: addressText)
        } catch {
            throw error.at(dotted(base + ["address"]))
        }
        let tls = try tlsExtras(base + ["tls"], tlsSource(base + ["tls"]))
        let redirect = try redirect(base, tls: tls)
        let proxyProtocol = try proxyProtocol(base)
        return ListenerConfiguration(
            name: name,
            address: address,
            tls: tls,
            redirectHTTPSPort: redirect,
            redirectHosts: list(base + ["redirect_hosts"]) ?? [],
            proxyProtocol: proxyProtocol
        )
    }

    /// Addresses and CIDR blocks (`limits.trusted_proxies`, a listener's `proxy_protocol.trusted`).
    func networks(_ entries: [String], key: [String]) throws(ConfigurationError) -> [IPNetwork] {
        var networks: [IPNetwork] = []
        for entry in entries {
            guard let network = IPNetwork(parsing: entry) else {
                throw ConfigurationError(
                    .invalidValue,
                    key: dotted(key),
                    "'\(entry)' is not an IP address or CIDR block (10.0.0.0/8, ::1/128)"
                )
            }
            networks.append(network)
        }
        return networks
    }
}

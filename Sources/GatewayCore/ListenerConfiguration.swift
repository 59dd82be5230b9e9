/// One place the gateway accepts connections.
public struct ListenerConfiguration: Sendable, Equatable {
    public var name: String
    public var address: ListenAddress
    /// `nil`: plain HTTP / `ws://` (fine on loopback or behind another TLS terminator).
    public var tls: TLSSettings?
    /// On a plain listener: answer every request but `/livez` and `/readyz` with 308 to
    /// `https://` on this port (443 leaves the port out of the URL).
    public var redirectHTTPSPort: Int?
    /// Hosts the redirect may name besides those of the gateway's own certificates (https served
    /// by something else); any other `Host` gets 421.
    public var redirectHosts: [String]
    /// Connections from a load balancer start with a PROXY protocol header naming the client.
    public var proxyProtocol: ProxyProtocolSettings?
    public init(
        name: String,
        address: ListenAddress,
        tls: TLSSettings? = nil,
        redirectHTTPSPort: Int? = nil,
        redirectHosts: [String] = [],
        proxyProtocol: ProxyProtocolSettings? = nil
    ) {
        self.redirectHosts = redirectHosts
        self.name = name
        self.address = address
        self.tls = tls
        self.redirectHTTPSPort = redirectHTTPSPort
        self.proxyProtocol = proxyProtocol
    }
}

/// A listener behind a layer-4 load balancer that speaks the PROXY protocol (v1 or v2).
public struct ProxyProtocolSettings: Sendable, Equatable {
    /// The load balancers: a connection from one of them must start with a header, and the
    /// client it names is the connection's client everywhere (limits, logs, workers' `:peer`,
    /// `Forwarded`). A connection from anyone else must not carry one. On a Unix-socket listener
    /// every connection must (the socket's permissions say who may connect).
    public var trusted: [IPNetwork]

    public init(trusted: [IPNetwork]) {
        self.trusted = trusted
    }
}

/// Where a listener binds.
public enum ListenAddress: Sendable, Hashable, CustomStringConvertible {
    /// IPv4 or IPv6 literal (or a name resolvable at start) and a port; port 0 picks a free one.
    case tcp(host: String, port: Int)
    /// A Unix stream socket path.
    case unix(path: String)
    /// A listening socket passed by systemd (socket activation), by its `FileDescriptorName=`
    /// or its number: `fd:https`, `fd:3`.
    case systemd(name: String)

    /// Parses `host:port`, `[v6]:port`, `:port` (all interfaces), `unix:/path` or `fd:NAME`.
    public init(parsing text: String) throws(ConfigurationError) {
        func bad(_ why: String) -> ConfigurationError {
            ConfigurationError(.invalidValue, key: "", "\(why) in address '\(text)'")
        }
        if text.hasPrefix("fd:") {
            let name = String(text.dropFirst(3))
            guard !name.isEmpty, name.utf8.count <= 255, !name.contains(":") else {
                throw bad("a descriptor name is 1 to 255 characters without ':'")
            }
            self = .systemd(name: name)
            return
        }
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard path.hasPrefix("/") || path.hasPrefix(".") else {
                throw bad("a Unix socket path must be absolute or start with '.'")
            }
            guard path.utf8.count < 108 else { throw bad("a Unix socket path must be shorter than 108 bytes") }
            self = .unix(path: path)
            return
        }
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw bad("missing ']'") }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw bad("missing ':port'") }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw bad("missing ':port'") }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") { throw bad("an IPv6 address must be written in brackets") }
        }
        guard let port = Int(portText), (0...65535).contains(port) else { throw bad("the port must be 0 to 65535") }
        // An IP literal or a host name (letters, digits, '-' and '.'): anything else (spaces,
        // line breaks) would only fail later, at bind, with a resolver's message.
        guard host.isEmpty || Self.isHost(host) else { throw bad("the host must be an IP address or a host name") }
        self = .tcp(host: host.isEmpty ? "0.0.0.0" : String(host), port: port)
    }

    /// An IP literal (an IPv6 one may carry a `%zone`) or a host name: letters, digits, '-'
    /// and '.'.
    private static func isHost(_ host: Substring) -> Bool {
        func isName(_ text: Substring) -> Bool {
            !text.isEmpty && text.utf8.count <= 253
                && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") }
        }
        if let percent = host.firstIndex(of: "%") {
            return IPNetwork.parseAddress(String(host[..<percent])) != nil
                && isName(host[host.index(after: percent)...])
        }
        return IPNetwork.parseAddress(String(host)) != nil || isName(host)
    }

    public var description: String {
        switch self {
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): "unix:\(path)"
        case .systemd(let name): "fd:\(name)"
        }
    }
}

/// Where a listener's certificate comes from, and which TLS versions it speaks.
public struct TLSSettings: Sendable, Equatable {
    public enum Source: Sendable, Equatable {
        /// PEM files as Let's Encrypt writes them: `fullchain.pem` (leaf first, then intermediates)
        /// and `privkey.pem` (PKCS#8, SEC1 or PKCS#1).
        case files(certificate: String, key: String)
        /// A certificate generated in process at start for these DNS names and IP addresses.
        case selfSigned(names: [String])
        /// Obtained and renewed by the gateway itself from an ACME CA (docs/certificates.md);
        /// until the first one arrives, a stored one or a self-signed one for the domains is served.
        case acme(ACMESettings)
    }
    public enum Version: String, Sendable, Equatable, CaseIterable {
        case tls12 = "1.2"
        case tls13 = "1.3"
    }
    public static let loopbackNames = ["localhost", "127.0.0.1", "::1"]

    /// Client certificates (mutual TLS).
    public enum ClientCertificates: String, Sendable, Equatable, CaseIterable {
        case off
        /// Verified against `client_ca` when presented; clients without one are let in.
        case optional
        /// The handshake fails without a certificate that `client_ca` vouches for.
        case required
    }
    /// Another certificate on the same listener, chosen when the client's SNI names one of its
    /// DNS names.
    public struct Additional: Sendable, Equatable {
        public var name: String
        public var certificate: String
        public var key: String
        public init(name: String, certificate: String, key: String) {
            self.name = name
            self.certificate = certificate
            self.key = key
        }
    }

    public var source: Source
    /// Lowest version accepted; 1.2 by default (never below).
    public var minimumVersion: Version
    /// Picked by SNI; `source` is the certificate for every other name (and for no SNI).
    public var additional: [Additional]
    public var clientCertificates: ClientCertificates
    /// PEM bundle of the CAs that issue client certificates.
    public var clientCA: String?
    /// `Strict-Transport-Security` on this listener's HTTP answers.
    public var hsts: String?
    /// HTTP/2 beside HTTP/1.1: ALPN offers `h2`, and WebSockets open as extended CONNECT streams
    /// (RFC 8441). Off by default: a listener without it offers neither `h2` nor the setting.
    public var http2: Bool = false
    /// The ACME settings when the certificate comes from an ACME CA.
    public var acme: ACMESettings? {
        if case .acme(let settings) = source { return settings }
        return nil
    }
    public init(
        source: Source,
        minimumVersion: Version = .tls12,
        additional: [Additional] = [],
        clientCertificates: ClientCertificates = .off,
        clientCA: String? = nil,
        hsts: String? = nil
    ) {
        self.source = source
        self.minimumVersion = minimumVersion
        self.additional = additional
        self.clientCertificates = clientCertificates
        self.clientCA = clientCA
        self.hsts = hsts
    }
}

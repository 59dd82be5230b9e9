import GatewayCore
import NIOCore

/// The keys of `listeners.<name>`: addresses, PROXY protocol, TLS and ACME.
extension ConfigKeys {
    /// `listeners.<name>`.
    static let listener = ConfigSection<ListenerConfiguration>([
        .key(
            "address",
            .text,
            .required("(required)"),
            .applies,
            "`host:port` (IPv4), `[v6]:port`, `:port` (all IPv4 interfaces), `unix:/path`, or `fd:NAME`: a listening socket systemd passed (socket activation), by its `FileDescriptorName=` (`fd:https` for the shipped `wssgate.socket`) or its number (`fd:3`); a name no passed socket has stops start-up. Port `0` picks a free port (the bound address is logged: `msg=listening address=…`). A port below 1024 needs root or `CAP_NET_BIND_SERVICE`: under systemd, let the socket unit bind it. An address that cannot be bound stops start-up naming the listener, the address and why."
        ) { .quoted($0.address.description) },
        .key(
            "redirect_https",
            .integer(1...65535),
            .unset("—"),
            .newConnections,
            "On a plain listener: the https port to send browsers to. Every request but `/livez` and `/readyz` — WebSocket upgrades too — gets **308** with `Location: https://<host>[:port]<target>` (443 leaves the port out), when `<host>` is one the gateway's certificates are for (any TLS listener's, SNI ones included, as they are now) or one of `redirect_hosts`. Any other `Host` gets **421** (the gateway is not an open redirect), a target that is not a path **400**."
        ) { $0.redirectHTTPSPort.map { .bare("\($0)") } },
        .key(
            "redirect_hosts",
            .list,
            .value("[]"),
            .newConnections,
            "DNS names and addresses the redirect may send browsers to besides the names of the gateway's own certificates: for https served by something else (a load balancer holding the certificate). A `*.` entry stands for one label."
        ) { $0.redirectHTTPSPort == nil ? nil : .list($0.redirectHosts) },
        .section("tls", tls) { $0.tls },
        .section("proxy_protocol", proxyProtocol) { $0.proxyProtocol },
    ])

    /// `listeners.<name>.proxy_protocol`.
    static let proxyProtocol = ConfigSection<ProxyProtocolSettings>([
        .key(
            "trusted",
            .list,
            .unset("— (off)"),
            .newConnections,
            "Addresses and CIDR blocks of the load balancers in front of this listener (HAProxy `send-proxy`/`send-proxy-v2`, AWS NLB, …). A connection from one of them must start with a PROXY protocol header (v1 or v2), and the client it names is the connection's client for limits, logs, workers' `:peer` and `Forwarded`; a connection from any other address must not carry one. Either mistake closes the connection before TLS. On a Unix-socket listener every connection must carry a header."
        ) { .list($0.trusted.map(\.description)) }
    ])

    /// `listeners.<name>.tls`.
    static let tls = ConfigSection<TLSSettings>([
        .key(
            "certificate",
            .text,
            .unset("—"),
            .newConnections,
            "PEM certificate chain, leaf first: Let's Encrypt's `fullchain.pem`."
        ) { if case .files(let certificate, _) = $0.source { .quoted(certificate) } else { nil } },
        .key(
            "key",
            .text,
            .unset("—"),
            .newConnections,
            "PEM private key of the leaf (PKCS#8, SEC1 or PKCS#1; RSA or ECDSA): Let's Encrypt's `privkey.pem`."
        ) { if case .files(_, let key) = $0.source { .quoted(key) } else { nil } },
        .key(
            "self_signed",
            .valueOrList,
            .unset("—"),
            .newConnections,
            "`true` (for `localhost`, `127.0.0.1`, `::1`) or a list of DNS names and IP addresses: a certificate generated at start. Instead of `certificate`/`key`."
        ) { if case .selfSigned(let names) = $0.source { .list(names) } else { nil } },
        .section("acme", acme) { $0.acme },
        .key(
            "min_version",
            .word(words(TLSSettings.Version.self)),
            .value("1.2"),
            .newConnections,
            "`\"1.2\"` or `\"1.3\"`."
        ) { .quoted($0.minimumVersion.rawValue) },
        .named("certificates", sniCertificate) { $0.additional.map { ($0.name, $0) } },
        .key(
            "client_certificates",
            .word(words(TLSSettings.ClientCertificates.self)),
            .value("off"),
            .newConnections,
            "Mutual TLS: `required` (the handshake fails without a certificate that `client_ca` vouches for) or `optional` (a presented certificate must verify; clients without one are let in). The certificate's subject reaches workers as `:client_subject`."
        ) { .bare($0.clientCertificates.rawValue) },
        .key(
            "client_ca",
            .text,
            .unset("—"),
            .newConnections,
            "PEM bundle of the CAs that issue client certificates (needed with `client_certificates`)."
        ) { $0.clientCA.map(PrintedValue.quoted) },
        .key(
            "hsts",
            .text,
            .unset("—"),
            .newConnections,
            "A `Strict-Transport-Security` value (such as `max-age=63072000; includeSubDomains`) sent with this listener's HTTP answers."
        ) { $0.hsts.map(PrintedValue.quoted) },
        .key(
            "http2",
            .boolean,
            .value("false"),
            .newConnections,
            "HTTP/2 beside HTTP/1.1: ALPN offers `h2`, the gateway sends `SETTINGS_ENABLE_CONNECT_PROTOCOL`, and a WebSocket opens as an extended CONNECT stream (RFC 8441), on the same routes; plain requests (health, static files) are served on h2 too. Each stream is a session, many on one connection."
        ) { .bare($0.http2 ? "true" : "false") },
    ])

    /// `listeners.<name>.tls.certificates.<name>`: a certificate chosen by SNI.
    static let sniCertificate = ConfigSection<TLSSettings.Additional>([
        .key(
            "certificate",
            .text,
            .unset("—"),
            .newConnections,
            "More certificates on the same listener (a chain, as `certificate`), each chosen when the client's SNI matches one of its subjectAltName DNS names (exactly, or `*.example.com` for one label). The main `certificate` serves every other name and clients without SNI."
        ) { .quoted($0.certificate) },
        .key(
            "key",
            .text,
            .unset("—"),
            .newConnections,
            "That certificate's private key."
        ) { .quoted($0.key) },
    ])

    /// `listeners.<name>.tls.acme`: a certificate the gateway obtains itself.
    static let acme = ConfigSection<ACMESettings>([
        .key(
            "directory",
            .text,
            .required("(required with `acme`)"),
            .restart,
            "The ACME CA's directory URL (`https://` only), or a preset: `letsencrypt` or `letsencrypt-staging`. Instead of `certificate`/`key` and `self_signed`: the gateway obtains and renews the certificate itself ([certificates.md](certificates.md))."
        ) { .quoted($0.directory) },
        .key(
            "email",
            .text,
            .unset("—"),
            .restart,
            "Contact address for the account (the CA's expiry warnings)."
        ) { $0.email.map(PrintedValue.quoted) },
        .key(
            "domains",
            .valueOrList,
            .required("(required with `acme`)"),
            .restart,
            "The names the certificate is for (lower-cased; no wildcards: those need DNS-01). The first is its subject and its folder's name."
        ) { .list($0.domains) },
        .key(
            "storage",
            .text,
            .value(ACMESettings.defaultStorage),
            .restart,
            "Folder for the account key, the certificates and their keys (created 0700; keys 0600). Gateways sharing it never order at the same time (a lock file)."
        ) { .quoted($0.storage) },
        .key(
            "ca_bundle",
            .text,
            .unset("system trust store"),
            .restart,
            "PEM bundle of the CAs trusted for the ACME server's own HTTPS (Pebble, a private CA)."
        ) { $0.caBundle.map(PrintedValue.quoted) },
        .key(
            "challenges",
            .valueOrList,
            .list(ACMESettings.Challenge.allCases.map(\.rawValue)),
            .restart,
            "Challenge types offered, in order of preference. `tls-alpn-01` is answered on this listener (the CA connects to port 443); `http-01` on every plain listener (the CA asks port 80), before any `redirect_https`."
        ) { .list($0.challenges.map(\.rawValue)) },
        .key(
            "eab_kid",
            .text,
            .unset("—"),
            .restart,
            "External account binding key id, for CAs that require one (ZeroSSL, Google)."
        ) { $0.externalAccountKeyID.map(PrintedValue.quoted) },
        .key(
            "eab_hmac_key",
            .secret,
            .unset("—"),
            .restart,
            "Its HMAC key, base64url as the CA hands it out (printed as `\"[redacted]\"` by `check-config`)."
        ) { $0.externalAccountHMACKey.map(PrintedValue.secret) },
        .key(
            "retry_initial",
            .duration(positive: true),
            .value("60s"),
            .restart,
            "Wait after a failed order (at least `1s`); doubled after each failure in a row, with jitter, and never shorter than the CA's `Retry-After`."
        ) { duration($0.retryInitial) },
        .key(
            "retry_max",
            .duration(positive: true),
            .value("24h"),
            .restart,
            "The longest wait between failed orders."
        ) { duration($0.retryMax) },
    ])
}

import Configuration
import GatewayCore
import NIOCore

/// A listener's `tls` section (where its certificate comes from, SNI certificates, client
/// certificates, HSTS, HTTP/2), its https redirect and its PROXY protocol.
extension ConfigurationBuilder {
    /// Where the certificate comes from: files, self-signed names or ACME — one of them — and
    /// the lowest TLS version; nil for a plain listener.
    func tlsSource(_ tlsBase: [String]) throws(ConfigurationError) -> TLSSettings? {
        let certificate = string(tlsBase + ["certificate"])
        let key = string(tlsBase + ["key"])
        let selfSigned = selfSignedNames(tlsBase + ["self_signed"])
        let minimumVersion: TLSSettings.Version = try choice(tlsBase + ["min_version"])
        var tls: TLSSettings?
        let acme = try acme(tlsBase + ["acme"])
        if acme != nil, certificate != nil || key != nil || selfSigned != nil {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(tlsBase + ["acme"]),
                "use either acme, certificate and key, or self_signed"
            )
        }
        switch (certificate, key, selfSigned) {
        case (nil, nil, nil):
            if let acme {
                tls = TLSSettings(source: .acme(acme), minimumVersion: minimumVersion)
            } else if string(tlsBase + ["min_version"]) != nil {
                throw ConfigurationError(
                    .missingValue,
                    key: dotted(tlsBase),
                    "min_version needs certificate and key, self_signed or acme"
                )
            }
        case (let certificate?, let key?, nil):
            tls = TLSSettings(source: .files(certificate: certificate, key: key), minimumVersion: minimumVersion)
        case (nil, nil, let names?):
            if !names.isEmpty { tls = TLSSettings(source: .selfSigned(names: names), minimumVersion: minimumVersion) }
        case (_, _, .some):
            throw ConfigurationError(
                .invalidValue,
                key: dotted(tlsBase + ["self_signed"]),
                "use either self_signed or certificate and key, not both"
            )
        case (nil, .some, nil):
            throw ConfigurationError(
                .missingValue,
                key: dotted(tlsBase + ["certificate"]),
                "a key needs its certificate"
            )
        case (.some, nil, nil):
            throw ConfigurationError(.missingValue, key: dotted(tlsBase + ["key"]), "a certificate needs its key")
        }
        return tls
    }

    /// The rest of `tls`, which only a TLS listener may have.
    func tlsExtras(_ tlsBase: [String], _ tls: TLSSettings?) throws(ConfigurationError) -> TLSSettings? {
        var tls = tls
        // SNI certificates, client certificates, HSTS: only with TLS.
        var additional: [TLSSettings.Additional] = []
        for certificateName in names["certificates"] ?? [] {
            let entry = tlsBase + ["certificates", certificateName]
            let certificate = string(entry + ["certificate"])
            let key = string(entry + ["key"])
            if certificate == nil && key == nil { continue }  // another listener's
            guard let certificate else {
                throw ConfigurationError(
                    .missingValue,
                    key: dotted(entry + ["certificate"]),
                    "a key needs its certificate"
                )
            }
            guard let key else {
                throw ConfigurationError(.missingValue, key: dotted(entry + ["key"]), "a certificate needs its key")
            }
            additional.append(.init(name: certificateName, certificate: certificate, key: key))
        }
        let clientCertificates: TLSSettings.ClientCertificates = try choice(tlsBase + ["client_certificates"])
        let clientCA = string(tlsBase + ["client_ca"])
        let hsts = string(tlsBase + ["hsts"])
        let http2 = try boolean(tlsBase + ["http2"])
        if var settings = tls {
            settings.http2 = http2
            settings.additional = additional
            settings.clientCertificates = clientCertificates
            settings.clientCA = clientCA
            settings.hsts = hsts
            if clientCertificates != .off && clientCA == nil {
                throw ConfigurationError(
                    .missingValue,
                    key: dotted(tlsBase + ["client_ca"]),
                    "client_certificates: \(clientCertificates.rawValue) needs the CAs that issue them"
                )
            }
            tls = settings
        } else if !additional.isEmpty || clientCertificates != .off || clientCA != nil || hsts != nil || http2 {
            throw ConfigurationError(
                .missingValue,
                key: dotted(tlsBase),
                "certificates, client certificates, hsts and http2 need certificate and key, self_signed or acme"
            )
        }
        return tls
    }

    /// `redirect_https` (and its hosts): plain listeners only.
    func redirect(_ base: [String], tls: TLSSettings?) throws(ConfigurationError) -> Int? {
        var redirect: Int?
        if string(base + ["redirect_https"]) != nil {
            redirect = try integer(base + ["redirect_https"])
            if tls != nil {
                throw ConfigurationError(
                    .invalidValue,
                    key: dotted(base + ["redirect_https"]),
                    "a TLS listener does not redirect to https: it is https"
                )
            }
        }
        if redirect == nil, list(base + ["redirect_hosts"]) != nil {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + ["redirect_hosts"]),
                "only a listener with redirect_https redirects"
            )
        }
        return redirect
    }

    /// `proxy_protocol.trusted`: the load balancers whose PROXY header is read.
    func proxyProtocol(_ base: [String]) throws(ConfigurationError) -> ProxyProtocolSettings? {
        var proxyProtocol: ProxyProtocolSettings?
        let trustedKey = base + ["proxy_protocol", "trusted"]
        if let entries = list(trustedKey) {
            guard !entries.isEmpty else {
                throw ConfigurationError(
                    .invalidValue,
                    key: dotted(trustedKey),
                    "name the load balancers (addresses or CIDR blocks), or leave proxy_protocol out"
                )
            }
            proxyProtocol = ProxyProtocolSettings(trusted: try networks(entries, key: trustedKey))
        }
        return proxyProtocol
    }
}

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
        let tlsBase = base + ["tls"]
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

    /// `tls.acme` of a listener (docs/certificates.md): nil unless `domains` is set.
    func acme(_ base: [String]) throws(ConfigurationError) -> ACMESettings? {
        let keys = ConfigKeys.acme.nodes.map(\.name).filter { $0 != "domains" }
        guard let domains = list(base + ["domains"]), !domains.isEmpty else {
            for key in keys where string(base + [key]) != nil || list(base + [key]) != nil {
                throw ConfigurationError(
                    .missingValue,
                    key: dotted(base + ["domains"]),
                    "\(dotted(base + [key])) is set but no domains are: name the certificate's domains"
                )
            }
            return nil
        }
        var names: [String] = []
        for domain in domains {
            let name = domain.lowercased()
            guard ACMESettings.isDomainName(name) else {
                throw ConfigurationError(
                    .invalidValue,
                    key: dotted(base + ["domains"]),
                    "'\(domain)' is not a domain name an ACME CA issues for (letters, digits, '-', dots; a leading '*.' needs DNS-01, which wssgate does not answer)"
                )
            }
            if !names.contains(name) { names.append(name) }
        }
        let directoryText = try required(base + ["directory"])
        let directory = ACMESettings.presets[directoryText] ?? directoryText
        guard directory.hasPrefix("https://"), directory.count > 8 else {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + ["directory"]),
                "'\(directoryText)' is neither an https:// URL nor a preset (\(ACMESettings.presets.keys.sorted().joined(separator: ", ")))"
            )
        }
        let email = string(base + ["email"])
        if let email, !(email.contains("@") && !email.contains(" ") && !email.hasPrefix("@") && !email.hasSuffix("@")) {
            throw ConfigurationError(.invalidValue, key: dotted(base + ["email"]), "'\(email)' is not an email address")
        }
        var challenges: [ACMESettings.Challenge] = []
        for text in listOrDefault(base + ["challenges"]) {
            guard let challenge = ACMESettings.Challenge(rawValue: text) else {
                throw ConfigurationError(
                    .invalidValue,
                    key: dotted(base + ["challenges"]),
                    "'\(text)' is not a challenge wssgate answers (tls-alpn-01, http-01)"
                )
            }
            if !challenges.contains(challenge) { challenges.append(challenge) }
        }
        let keyID = string(base + ["eab_kid"])
        let hmacKey = string(base + ["eab_hmac_key"])
        guard (keyID == nil) == (hmacKey == nil) else {
            throw ConfigurationError(
                .missingValue,
                key: dotted(base + [keyID == nil ? "eab_kid" : "eab_hmac_key"]),
                "external account binding needs both eab_kid and eab_hmac_key"
            )
        }
        let storage = stringOrDefault(base + ["storage"])
        guard storage.hasPrefix("/") || storage.hasPrefix(".") else {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + ["storage"]),
                "'\(storage)' must be an absolute path or start with '.'"
            )
        }
        let retryInitial = try duration(base + ["retry_initial"])
        let retryMax = try duration(base + ["retry_max"])
        guard retryInitial >= .seconds(1) else {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + ["retry_initial"]),
                "at least 1s: a CA counts failed orders"
            )
        }
        guard retryMax >= retryInitial else {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + ["retry_max"]),
                "must not be shorter than retry_initial"
            )
        }
        return ACMESettings(
            directory: directory,
            email: email,
            domains: names,
            storage: storage,
            caBundle: string(base + ["ca_bundle"]),
            challenges: challenges,
            externalAccountKeyID: keyID,
            externalAccountHMACKey: hmacKey,
            retryInitial: retryInitial,
            retryMax: retryMax
        )
    }
}

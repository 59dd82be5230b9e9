import Configuration
import GatewayCore
import NIOCore

/// A listener's `tls.acme` section (docs/certificates.md).
extension ConfigurationBuilder {
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
        let names = try acmeDomains(base, domains)
        let directory = try acmeDirectory(base)
        let email = string(base + ["email"])
        if let email, !(email.contains("@") && !email.contains(" ") && !email.hasPrefix("@") && !email.hasSuffix("@")) {
            throw ConfigurationError(.invalidValue, key: dotted(base + ["email"]), "'\(email)' is not an email address")
        }
        let challenges = try acmeChallenges(base)
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
        let (retryInitial, retryMax) = try acmeRetry(base)
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

    /// The certificate's names, lowercased, each once, each one an ACME CA issues for.
    private func acmeDomains(_ base: [String], _ domains: [String]) throws(ConfigurationError) -> [String] {
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
        return names
    }

    /// The CA's directory URL, or a preset's.
    private func acmeDirectory(_ base: [String]) throws(ConfigurationError) -> String {
        let directoryText = try required(base + ["directory"])
        let directory = ACMESettings.presets[directoryText] ?? directoryText
        guard directory.hasPrefix("https://"), directory.count > 8 else {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + ["directory"]),
                "'\(directoryText)' is neither an https:// URL nor a preset (\(ACMESettings.presets.keys.sorted().joined(separator: ", ")))"
            )
        }
        return directory
    }

    /// The challenges to answer, in the order given, each once.
    private func acmeChallenges(_ base: [String]) throws(ConfigurationError) -> [ACMESettings.Challenge] {
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
        return challenges
    }

    /// The backoff after a failed order: from `retry_initial` (at least 1s) up to `retry_max`.
    private func acmeRetry(_ base: [String]) throws(ConfigurationError) -> (TimeAmount, TimeAmount) {
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
        return (retryInitial, retryMax)
    }
}

import Configuration
import GatewayCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A route's `auth` section (docs/configuration.md): its keys, algorithms and where the token is.
extension ConfigurationBuilder {
    /// A route's `auth` section, key files read; nil when the route has none.
    func auth(_ base: [String]) throws(ConfigurationError) -> JWTSettings? {
        let fields = ConfigKeys.auth.nodes.map(\.name)
        guard fields.contains(where: { string(base + [$0]) != nil || list(base + [$0]) != nil }) else { return nil }
        var settings = try authKeys(base)
        settings.algorithms = try authAlgorithms(base)
        settings.issuer = string(base + ["issuer"])
        settings.audiences = list(base + ["audience"]) ?? []
        settings.leeway = try duration(base + ["leeway"])
        settings.sources = try authSources(base)
        settings.cookieName = stringOrDefault(base + ["cookie"])
        settings.queryParameter = stringOrDefault(base + ["query_parameter"])
        let prefix = stringOrDefault(base + ["protocol_prefix"])
        guard !prefix.isEmpty, HTTPToken.isToken(prefix) else {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + ["protocol_prefix"]),
                "'\(prefix)' is not a token prefix such as 'bearer.'"
            )
        }
        settings.protocolPrefix = prefix
        return settings
    }

    /// The keys: an HS256 secret (inline or from a file, at least 32 bytes), public keys and
    /// a JWKS file — at least one of them, files read now.
    private func authKeys(_ base: [String]) throws(ConfigurationError) -> JWTSettings {
        func read(_ path: String, key: String) throws(ConfigurationError) -> String {
            do {
                return try ConfigurationLoader.readFile(path)
            } catch {
                throw error.at(dotted(base + [key]))
            }
        }
        var settings = JWTSettings()
        switch (string(base + ["hs256_secret"]), string(base + ["hs256_secret_file"])) {
        case (.some, .some):
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + ["hs256_secret_file"]),
                "use either hs256_secret or hs256_secret_file, not both"
            )
        case (let secret?, nil):
            settings.secrets = [Self.unredacted(secret)]
        case (nil, let path?):
            settings.secrets = [try read(path, key: "hs256_secret_file").trimmingCharacters(in: "\n")]
            settings.secretFile = path
        case (nil, nil):
            break
        }
        if settings.secrets.contains(where: { $0.utf8.count < 32 }) {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + [string(base + ["hs256_secret"]) != nil ? "hs256_secret" : "hs256_secret_file"]),
                "an HS256 secret must be at least 32 bytes"
            )
        }
        for path in list(base + ["public_keys"]) ?? [] {
            settings.publicKeys.append((path, try read(path, key: "public_keys")))
        }
        if let path = string(base + ["jwks_file"]) {
            settings.jwks = (path, try read(path, key: "jwks_file"))
        }
        guard !settings.secrets.isEmpty || !settings.publicKeys.isEmpty || settings.jwks != nil else {
            throw ConfigurationError(
                .missingValue,
                key: dotted(base),
                "needs a key: hs256_secret(_file), public_keys or jwks_file"
            )
        }
        return settings
    }

    private func authAlgorithms(_ base: [String]) throws(ConfigurationError) -> [JWTSettings.Algorithm] {
        var algorithms: [JWTSettings.Algorithm] = []
        for name in listOrDefault(base + ["algorithms"]) {
            guard let algorithm = JWTSettings.Algorithm(rawValue: name) else {
                throw ConfigurationError(
                    .invalidValue,
                    key: dotted(base + ["algorithms"]),
                    "'\(name)' is not one of: HS256, RS256, ES256"
                )
            }
            algorithms.append(algorithm)
        }
        return algorithms
    }

    /// Where the token may be, in the order looked at: at least one place.
    private func authSources(_ base: [String]) throws(ConfigurationError) -> [JWTSettings.Source] {
        var sources: [JWTSettings.Source] = []
        for name in listOrDefault(base + ["token_from"]) {
            guard let source = JWTSettings.Source(rawValue: name) else {
                throw ConfigurationError(
                    .invalidValue,
                    key: dotted(base + ["token_from"]),
                    "'\(name)' is not one of: header, protocol, cookie, query"
                )
            }
            sources.append(source)
        }
        guard !sources.isEmpty else {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(base + ["token_from"]),
                "name at least one place to look for the token"
            )
        }
        return sources
    }
}

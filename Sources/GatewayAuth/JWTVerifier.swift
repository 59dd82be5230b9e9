import GatewayCore
import JWTKit
import NIOCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Checks a route's JWTs with jwt-kit: the signature with a key of the algorithm the token's
/// header names — and only algorithms the route allows, so `none` and HS/RS confusion fail
/// before any key is tried — then `exp`, `nbf` (with the route's leeway), `iss` and `aud`.
///
/// Keys are grouped by algorithm: a token's `alg` picks the group, its `kid` (if any) the key
/// within it; without a `kid` every key of the group is tried.
public final class JWTVerifier: Sendable {
    /// Where a key came from, for a configuration error that names it.
    public struct KeyError: Error, CustomStringConvertible {
        public var key: String
        public var message: String
        public var description: String { "\(key): \(message)" }
    }

    /// The claims jwt-kit decodes for the checks; every claim reaches workers untouched, from
    /// the token's own payload.
    struct Claims: JWTPayload {
        var exp: Double?
        var nbf: Double?
        var iss: String?
        var aud: Audience?

        /// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
        struct Audience: Codable, Sendable {
            var values: [String]
            init(from decoder: any Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let one = try? container.decode(String.self) {
                    values = [one]
                } else {
                    values = try container.decode([String].self)
                }
            }
            func encode(to encoder: any Encoder) throws {
                var container = encoder.singleValueContainer()
                try container.encode(values)
            }
        }

        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    /// A token that passed: its claims as the JSON the token carried, and its subject.
    public struct Verified: Sendable {
        public var claimsJSON: String
        public var subject: String?
    }

    private let settings: JWTSettings
    private let groups: [JWTSettings.Algorithm: JWTKeyCollection]

    /// Parses every key; a key that does not parse is a `KeyError` naming it (the loader turns
    /// it into a configuration error).
    public init(settings: JWTSettings, routeKey: String) async throws {
        self.settings = settings
        var groups: [JWTSettings.Algorithm: JWTKeyCollection] = [:]
        func group(_ algorithm: JWTSettings.Algorithm) -> JWTKeyCollection {
            if let existing = groups[algorithm] { return existing }
            let made = JWTKeyCollection()
            groups[algorithm] = made
            return made
        }
        for secret in settings.secrets {
            await group(.hs256).add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        }
        for (path, pem) in settings.publicKeys {
            if let key = try? ES256PublicKey(pem: pem) {
                await group(.es256).add(ecdsa: key)
            } else {
                do {
                    let key = try Insecure.RSA.PublicKey(pem: pem)
                    await group(.rs256).add(rsa: key, digestAlgorithm: .sha256)
                } catch {
                    throw KeyError(
                        key: routeKey + ".public_keys",
                        message: "\(path) is not a PEM public key for ES256 (P-256) or RS256 (RSA of 2048 bits or more)"
                    )
                }
            }
        }
        if let (path, json) = settings.jwks {
            let jwks: JWKS
            do {
                jwks = try JSONDecoder().decode(JWKS.self, from: Data(json.utf8))
            } catch {
                throw KeyError(key: routeKey + ".jwks_file", message: "\(path) is not a JWKS document")
            }
            for jwk in jwks.keys {
                guard let name = jwk.algorithm?.rawValue, let algorithm = JWTSettings.Algorithm(rawValue: name) else {
                    throw KeyError(
                        key: routeKey + ".jwks_file",
                        message: "\(path): every key needs \"alg\": HS256, RS256 or ES256"
                    )
                }
                do {
                    try await group(algorithm).add(jwk: jwk)
                } catch {
                    throw KeyError(key: routeKey + ".jwks_file", message: "\(path): a key does not load: \(error)")
                }
            }
        }
        self.groups = groups
    }

    public func verify(
        _ token: String,
        now: Double = Date().timeIntervalSince1970
    ) async throws(AuthFailure) -> Verified {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerBytes = Self.base64URLDecoded(parts[0]),
            let payloadBytes = Self.base64URLDecoded(parts[1]),
            let header = try? JSONDecoder().decode([String: JSONValueLite].self, from: Data(headerBytes))
        else {
            throw AuthFailure(.malformed, "the token is not a JWT")
        }
        // A token whose header says some extension must be understood cannot be accepted by
        // one that understands none (RFC 7515 §4.1.11): its meaning may hang on it.
        guard header["crit"] == nil else {
            throw AuthFailure(.critical, "the token needs extensions this gateway does not implement (crit)")
        }
        guard case .string(let alg)? = header["alg"], let algorithm = JWTSettings.Algorithm(rawValue: alg),
            settings.algorithms.contains(algorithm), let keys = groups[algorithm]
        else {
            throw AuthFailure(.algorithm, "the token's algorithm is not accepted here")
        }
        let claims: Claims
        do {
            claims = try await keys.verify(token, as: Claims.self, iteratingKeys: true)
        } catch {
            throw AuthFailure(.signature, "the token's signature does not verify")
        }
        let leeway = Double(settings.leeway.nanoseconds) / 1e9
        if let exp = claims.exp, now > exp + leeway {
            throw AuthFailure(.expired, "the token has expired")
        }
        if let nbf = claims.nbf, now + leeway < nbf {
            throw AuthFailure(.notYetValid, "the token is not valid yet")
        }
        if let issuer = settings.issuer, claims.iss != issuer {
            throw AuthFailure(.issuer, "the token's issuer is not accepted here")
        }
        if !settings.audiences.isEmpty {
            let audiences = claims.aud?.values ?? []
            guard audiences.contains(where: settings.audiences.contains) else {
                throw AuthFailure(.audience, "the token is not meant for this service")
            }
        }
        let json = String(decoding: payloadBytes, as: UTF8.self)
        var subject: String?
        if let object = try? JSONDecoder().decode([String: JSONValueLite].self, from: Data(payloadBytes)),
            case .string(let sub)? = object["sub"]
        {
            subject = sub
        }
        return Verified(claimsJSON: json, subject: subject)
    }

    static func base64URLDecoded(_ text: Substring) -> [UInt8]? {
        Base64URL.decode(String(text))
    }

    /// Enough JSON to read a header's `alg` and a payload's `sub`.
    enum JSONValueLite: Decodable {
        case string(String)
        case other
        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let text = try? container.decode(String.self) { self = .string(text) } else { self = .other }
        }
    }
}

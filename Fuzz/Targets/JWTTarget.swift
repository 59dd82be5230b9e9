import Crypto
import GatewayAuth
import GatewayCore
import NIOCore
import PercentEncoding

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A route's token check on upgrade: where the token is looked for (header, cookie, query,
/// subprotocol) and jwt-kit's verification behind the gateway's own checks (algorithm allow
/// list, `exp`, `nbf`, `iss`, `aud`). The verifier holds an HS256 secret and an ES256 key; the
/// input is the token (seeds are tokens signed with both, for the fuzzer to mutate).
///
/// Invariants: a token that passes carries a signature that verifies, by the algorithm its
/// header names, under a key the route holds, and claims within the route's rules — nothing
/// the fuzzer can make without the keys passes. The token found in a request is the one put
/// there.
enum JWTTarget {
    /// The seeds' keys (`Fuzz/Corpus/jwt` was signed with these).
    static let secret = "wssgate-fuzz-secret-of-at-least-32-bytes"
    static let signingKey = try! P256.Signing.PrivateKey(rawRepresentation: [UInt8](repeating: 7, count: 32))
    static let issuer = "wssgate-fuzz"
    static let audience = "fuzz"
    /// The verification time: seeds expire in 2030 and some are not valid before 2025.
    static let now = 1_800_000_000.0

    static let settings = JWTSettings(
        secrets: [secret],
        publicKeys: [(path: "fuzz.pem", pem: signingKey.publicKey.pemRepresentation)],
        algorithms: [.hs256, .es256],
        issuer: issuer,
        audiences: [audience]
    )

    static let verifier: JWTVerifier = BlockingAsync.run {
        try! await JWTVerifier(settings: settings, routeKey: "routes.fuzz.auth")
    }

    static let target = FuzzTarget(name: "jwt") { data throws(FuzzFailure) in
        let token = String(decoding: data, as: UTF8.self)
        let verdict = BlockingAsync.run { () -> Result<JWTVerifier.Verified, AuthFailure> in
            do throws(AuthFailure) {
                return .success(try await verifier.verify(token, now: now))
            } catch {
                return .failure(error)
            }
        }
        if case .success(let verified) = verdict {
            try checkPassed(token, claimsJSON: verified.claimsJSON)
        }

        // Where the token is looked for: it comes back as it was put, from each place.
        guard !token.isEmpty, token.utf8.allSatisfy({ (0x21...0x7E).contains($0) && $0 != 0x3B && $0 != 0x2C }) else {
            return
        }
        let places: [([(String, String)], String)] = [
            ([("authorization", "Bearer " + token)], "/fuzz"),
            ([("cookie", "a=b; access_token=" + token)], "/fuzz"),
            ([("sec-websocket-protocol", "chat, bearer." + token)], "/fuzz"),
            ([], "/fuzz?room=a&access_token=" + PercentDecoding.encode(token)),
        ]
        for (headers, target) in places {
            let found = TokenExtractor.token(in: headers, target: target, settings: settings)
            try FuzzFailure.check(found == token, "\(headers) gives the token \(String(describing: found))")
        }
    }

    /// A token the verifier let through: its signature and claims, checked again from scratch.
    private static func checkPassed(_ token: String, claimsJSON: String) throws(FuzzFailure) {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let signature = Base64URL.decode(String(parts[2])),
            let headerBytes = Base64URL.decode(String(parts[0]))
        else {
            throw FuzzFailure("\(token.debugDescription) passed without being three base64url parts")
        }
        let signingInput = Array((parts[0] + "." + parts[1]).utf8)
        let header = String(decoding: headerBytes, as: UTF8.self)
        if header.contains("\"HS256\"") {
            let mac = HMAC<SHA256>.authenticationCode(for: signingInput, using: SymmetricKey(data: Array(secret.utf8)))
            if Array(mac) == signature { return try checkClaims(claimsJSON) }
        }
        if header.contains("\"ES256\""), let ecdsa = try? P256.Signing.ECDSASignature(rawRepresentation: signature),
            signingKey.publicKey.isValidSignature(ecdsa, for: signingInput)
        {
            return try checkClaims(claimsJSON)
        }
        throw FuzzFailure("\(token.debugDescription) passed with a signature no key of the route made")
    }

    private static func checkClaims(_ json: String) throws(FuzzFailure) {
        try FuzzFailure.check(
            json.contains(issuer) && json.contains(audience),
            "claims without the issuer or audience passed: \(json)"
        )
    }
}

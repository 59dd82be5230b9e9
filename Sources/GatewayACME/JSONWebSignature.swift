import Crypto
import GatewayCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// JWS in the flattened JSON serialization (RFC 7515 §7.2.2), as every ACME request is signed
/// (RFC 8555 §6.2): ES256 with the account key, `jwk` before the account exists, `kid` after.
public enum JSONWebSignature {
    /// The account key's public JWK (RFC 7517), members in the order RFC 7638 hashes them.
    public static func jwk(of key: P256.Signing.PublicKey) -> String {
        let point = Array(key.x963Representation)  // 0x04 ‖ x ‖ y
        let x = Base64URL.encode(point[1..<33])
        let y = Base64URL.encode(point[33..<65])
        return #"{"crv":"P-256","kty":"EC","x":"\#(x)","y":"\#(y)"}"#
    }

    /// RFC 7638 thumbprint: the base of every key authorization (RFC 8555 §8.1).
    public static func thumbprint(of key: P256.Signing.PublicKey) -> String {
        Base64URL.encode(Array(SHA256.hash(data: Array(jwk(of: key).utf8))))
    }

    /// Who signs: the new account's key (`jwk`) or an existing account (`kid`).
    public enum Signer: Sendable {
        case jwk
        case account(url: String)
    }

    /// A signed request body. `payload` nil is POST-as-GET (an empty payload, RFC 8555 §6.3).
    public static func sign(
        payload: [UInt8]?,
        url: String,
        nonce: String,
        key: P256.Signing.PrivateKey,
        signer: Signer
    ) throws -> [UInt8] {
        let identity: String
        switch signer {
        case .jwk: identity = #""jwk":\#(jwk(of: key.publicKey))"#
        case .account(let accountURL): identity = #""kid":\#(quoted(accountURL))"#
        }
        let protected = #"{"alg":"ES256",\#(identity),"nonce":\#(quoted(nonce)),"url":\#(quoted(url))}"#
        let protectedPart = Base64URL.encode(Array(protected.utf8))
        let payloadPart = payload.map { Base64URL.encode($0) } ?? ""
        let signature = try key.signature(for: Array("\(protectedPart).\(payloadPart)".utf8))
        let signaturePart = Base64URL.encode(signature.rawRepresentation)
        return Array(
            #"{"protected":"\#(protectedPart)","payload":"\#(payloadPart)","signature":"\#(signaturePart)"}"#.utf8
        )
    }

    /// External account binding (RFC 8555 §7.3.4): the account's JWK signed with the CA-issued
    /// HMAC key, as an object for `newAccount`'s `externalAccountBinding`.
    public static func externalAccountBinding(
        accountKey: P256.Signing.PublicKey,
        keyID: String,
        hmacKey: [UInt8],
        url: String
    ) -> String {
        let protected = #"{"alg":"HS256","kid":\#(quoted(keyID)),"url":\#(quoted(url))}"#
        let protectedPart = Base64URL.encode(Array(protected.utf8))
        let payloadPart = Base64URL.encode(Array(jwk(of: accountKey).utf8))
        let mac = HMAC<SHA256>.authenticationCode(
            for: Array("\(protectedPart).\(payloadPart)".utf8),
            using: SymmetricKey(data: hmacKey)
        )
        return
            #"{"protected":"\#(protectedPart)","payload":"\#(payloadPart)","signature":"\#(Base64URL.encode(Array(mac)))"}"#
    }

    /// A JSON string literal.
    static func quoted(_ text: String) -> String {
        let data = (try? JSONEncoder().encode(text)) ?? Data("\"\"".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}

import Crypto
import GatewayCore
import XCTest

@testable import GatewayACME

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

final class JSONWebSignatureTests: XCTestCase {
    func testBase64URLRoundTripsEveryLength() {
        XCTAssertEqual(Base64URL.encode(Array("hello?>".utf8)), "aGVsbG8_Pg")
        XCTAssertEqual(Base64URL.encode([0xFB, 0xFF]), "-_8")
        for length in 0..<70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255) }
            XCTAssertEqual(Base64URL.decode(Base64URL.encode(bytes)), bytes)
        }
        XCTAssertNil(Base64URL.decode("a"))
        XCTAssertNil(Base64URL.decode("ab*c"))
        XCTAssertEqual(Base64URL.decode("aGk="), Array("hi".utf8))
    }

    /// RFC 7638 §3.1 hashes the members in this order with no spaces; RFC 8555's key
    /// authorizations depend on it byte for byte.
    func testThumbprintIsSHA256OfTheCanonicalJWK() throws {
        let key = P256.Signing.PrivateKey()
        let jwk = JSONWebSignature.jwk(of: key.publicKey)
        let members = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(jwk.utf8)) as? [String: String])
        XCTAssertEqual(Set(members.keys), ["crv", "kty", "x", "y"])
        XCTAssertTrue(jwk.hasPrefix(#"{"crv":"P-256","kty":"EC","x":""#))
        let x = try XCTUnwrap(Base64URL.decode(members["x"]!))
        let y = try XCTUnwrap(Base64URL.decode(members["y"]!))
        XCTAssertEqual([0x04] + x + y, Array(key.publicKey.x963Representation))
        XCTAssertEqual(
            JSONWebSignature.thumbprint(of: key.publicKey),
            Base64URL.encode(Array(SHA256.hash(data: Array(jwk.utf8))))
        )
    }

    func testSignedRequestVerifiesWithTheAccountKey() throws {
        let key = P256.Signing.PrivateKey()
        let body = try JSONWebSignature.sign(
            payload: Array(#"{"a":1}"#.utf8),
            url: "https://ca.test/new-order",
            nonce: "n0nce",
            key: key,
            signer: .account(url: "https://ca.test/acct/1")
        )
        let jws = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(body)) as? [String: String])
        let protected = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(XCTUnwrap(Base64URL.decode(jws["protected"]!))))
                as? [String: String]
        )
        XCTAssertEqual(
            protected,
            ["alg": "ES256", "kid": "https://ca.test/acct/1", "nonce": "n0nce", "url": "https://ca.test/new-order"]
        )
        XCTAssertEqual(Base64URL.decode(jws["payload"]!), Array(#"{"a":1}"#.utf8))
        let signature = try P256.Signing.ECDSASignature(
            rawRepresentation: XCTUnwrap(Base64URL.decode(jws["signature"]!))
        )
        XCTAssertTrue(
            key.publicKey.isValidSignature(signature, for: Array("\(jws["protected"]!).\(jws["payload"]!)".utf8))
        )
        // POST-as-GET: an empty payload; before the account exists, the key itself (jwk).
        let get = try JSONWebSignature.sign(payload: nil, url: "https://ca.test/x", nonce: "n", key: key, signer: .jwk)
        let getJWS = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(get)) as? [String: Any])
        XCTAssertEqual(getJWS["payload"] as? String, "")
        let header = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(XCTUnwrap(Base64URL.decode(getJWS["protected"] as! String))))
                as? [String: Any]
        )
        XCTAssertNil(header["kid"])
        XCTAssertEqual((header["jwk"] as? [String: String])?["kty"], "EC")
    }

    func testExternalAccountBindingIsAnHMACOverTheAccountKey() throws {
        let key = P256.Signing.PrivateKey()
        let hmacKey = Array("a-key-the-ca-issued".utf8)
        let binding = JSONWebSignature.externalAccountBinding(
            accountKey: key.publicKey,
            keyID: "kid-7",
            hmacKey: hmacKey,
            url: "https://ca.test/new-account"
        )
        let jws = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(binding.utf8)) as? [String: String])
        let protected = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(XCTUnwrap(Base64URL.decode(jws["protected"]!))))
                as? [String: String]
        )
        XCTAssertEqual(protected, ["alg": "HS256", "kid": "kid-7", "url": "https://ca.test/new-account"])
        XCTAssertEqual(
            String(decoding: try XCTUnwrap(Base64URL.decode(jws["payload"]!)), as: UTF8.self),
            JSONWebSignature.jwk(of: key.publicKey)
        )
        let mac = HMAC<SHA256>.authenticationCode(
            for: Array("\(jws["protected"]!).\(jws["payload"]!)".utf8),
            using: SymmetricKey(data: hmacKey)
        )
        XCTAssertEqual(Base64URL.decode(jws["signature"]!), Array(mac))
    }

    func testQuotedEscapesWhatJSONNeeds() {
        XCTAssertEqual(JSONWebSignature.quoted(#"a"b\c"#), #""a\"b\\c""#)
    }
}

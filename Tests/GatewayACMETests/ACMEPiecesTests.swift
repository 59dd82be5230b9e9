import Crypto
import GatewayCore
import NIOHTTP1
import SwiftASN1
import X509
import XCTest

@testable import GatewayACME

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

final class ACMEPiecesTests: XCTestCase {
    func testRetryAfterTakesSecondsAndHTTPDates() {
        let now = Date(timeIntervalSince1970: 784_111_777)  // Sun, 06 Nov 1994 08:49:37 GMT
        XCTAssertEqual(ACMEClient.retryAfter(["Retry-After": "120"], now: now), 120)
        XCTAssertEqual(ACMEClient.retryAfter(["Retry-After": "Sun, 06 Nov 1994 08:51:37 GMT"], now: now), 120)
        XCTAssertEqual(ACMEClient.retryAfter(["Retry-After": "Sun, 06 Nov 1994 08:00:00 GMT"], now: now), 0)
        XCTAssertNil(ACMEClient.retryAfter(["Retry-After": "soon"], now: now))
        XCTAssertNil(ACMEClient.retryAfter(["Retry-After": "-5"], now: now))
        XCTAssertNil(ACMEClient.retryAfter([:], now: now))
        // A year past four digits was day arithmetic that overflowed, and a trap.
        XCTAssertNil(ACMEClient.retryAfter(["Retry-After": "Sun, 06 Nov 9223372036854775807 08:49:37 GMT"], now: now))
        XCTAssertNil(ACMEClient.retryAfter(["Retry-After": "Sun, 06 Jan -9223372036854775808 08:49:37 GMT"], now: now))
        XCTAssertNil(ACMEClient.retryAfter(["Retry-After": "Sun, 06 Nov 10000 08:49:37 GMT"], now: now))
    }

    func testRFC3339Timestamps() {
        XCTAssertEqual(HTTPDate.parseRFC3339("1994-11-06T08:49:37Z"), Date(timeIntervalSince1970: 784_111_777))
        XCTAssertEqual(HTTPDate.parseRFC3339("1994-11-06T10:49:37.5+02:00"), Date(timeIntervalSince1970: 784_111_777.5))
        XCTAssertEqual(HTTPDate.parseRFC3339("2000-02-29T00:00:00z"), Date(timeIntervalSince1970: 951_782_400))
        XCTAssertNil(HTTPDate.parseRFC3339("1994-11-06 08:49:37"))
        XCTAssertNil(HTTPDate.parseRFC3339("1994-13-06T08:49:37Z"))
    }

    /// RFC 9773 §4.1's example: AKI 69:88:5B:… and serial 00:87:65:43:21.
    func testRenewalIdentifierMatchesTheRFCExample() throws {
        let key = P256.Signing.PrivateKey()
        let keyIdentifier: [UInt8] = [
            0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3, 0x7B, 0x84, 0x7B, 0xA0, 0xAE, 0x2C, 0xDE, 0x01,
            0xC8, 0xD4,
        ]
        let name = try DistinguishedName { CommonName("gw.test") }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(bytes: [0x00, 0x87, 0x65, 0x43, 0x21]),
            publicKey: .init(key.publicKey),
            notValidBefore: Date(),
            notValidAfter: Date().addingTimeInterval(86400),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions { AuthorityKeyIdentifier(keyIdentifier: keyIdentifier[...]) },
            issuerPrivateKey: .init(key)
        )
        XCTAssertEqual(CertificateManager.renewalIdentifier(of: certificate), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE")
    }

    func testSigningRequestNamesEveryDomainAndIsSigned() throws {
        let key = P256.Signing.PrivateKey()
        let der = try CertificateManager.signingRequest(domains: ["a.example", "b.example"], key: key)
        let request = try CertificateSigningRequest(derEncoded: der)
        XCTAssertEqual(request.subject.description, "CN=a.example")
        XCTAssertEqual(request.publicKey, Certificate.PublicKey(key.publicKey))
        let names = try XCTUnwrap(try request.attributes.extensionRequest?.extensions.subjectAlternativeNames)
        XCTAssertEqual(Array(names), [.dnsName("a.example"), .dnsName("b.example")])
        XCTAssertTrue(request.publicKey.isValidSignature(request.signature, for: request))
    }

    func testHTTPSTargets() throws {
        let plain = try XCTUnwrap(ACMEHTTPClient.Target("https://acme-v02.api.letsencrypt.org/directory"))
        XCTAssertEqual(
            [plain.host, String(plain.port), plain.path, plain.hostHeader],
            ["acme-v02.api.letsencrypt.org", "443", "/directory", "acme-v02.api.letsencrypt.org"]
        )
        XCTAssertFalse(plain.isAddress)
        let local = try XCTUnwrap(ACMEHTTPClient.Target("https://127.0.0.1:14000"))
        XCTAssertEqual(
            [local.host, String(local.port), local.path, local.hostHeader],
            ["127.0.0.1", "14000", "/", "127.0.0.1:14000"]
        )
        XCTAssertTrue(local.isAddress)
        let v6 = try XCTUnwrap(ACMEHTTPClient.Target("https://[::1]:8443/dir?x=1"))
        XCTAssertEqual([v6.host, String(v6.port), v6.path, v6.hostHeader], ["::1", "8443", "/dir?x=1", "[::1]:8443"])
        for bad in [
            "http://ca.test/dir", "https://", "https://user@ca.test/", "https://ca.test:0/", "https://ca.test:x/",
            "https://[::1/",
        ] {
            XCTAssertNil(ACMEHTTPClient.Target(bad), bad)
        }
    }

    func testStorageWritesWholeFilesWithTheirModesAndLocksExclusively() throws {
        let root = NSTemporaryDirectory() + "acme-\(UUID().uuidString)"
        let settings = ACMESettings(directory: "https://127.0.0.1:14000/dir", domains: ["gw.test"], storage: root)
        let storage = ACMEStorage(settings: settings)
        try storage.prepare()
        let key = try storage.accountKey()
        XCTAssertEqual(try storage.accountKey().rawRepresentation, key.rawRepresentation, "the account key is kept")
        XCTAssertEqual(try mode(of: storage.accountFolder + "/account.key"), 0o600)
        XCTAssertEqual(try mode(of: root), 0o700)
        XCTAssertEqual(storage.accountFolder, root + "/accounts/127.0.0.1_14000")
        XCTAssertNil(try storage.accountURL())
        try storage.saveAccountURL("https://ca.test/acct/9")
        XCTAssertEqual(try storage.accountURL(), "https://ca.test/acct/9")
        try storage.saveCertificate(chainPEM: Array("chain".utf8), keyPEM: Array("key".utf8))
        XCTAssertEqual(try mode(of: settings.keyPath), 0o600)
        XCTAssertEqual(try storage.read(settings.certificatePath), Array("chain".utf8))
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: settings.certificateFolder).sorted(),
            ["fullchain.pem", "privkey.pem"]
        )
        // flock: a second holder (another process in real life) is refused until release.
        let first = try XCTUnwrap(try storage.tryLock())
        XCTAssertNil(try storage.tryLock())
        storage.unlock(first)
        let again = try XCTUnwrap(try storage.tryLock())
        storage.unlock(again)
        // A key file that is not a key is an error that says what to do, never replaced.
        try storage.write(Array("junk".utf8), to: storage.accountFolder + "/account.key", mode: 0o600)
        XCTAssertThrowsError(try storage.accountKey()) { error in
            XCTAssertEqual((error as? ACMEError)?.code, .storage)
            XCTAssertTrue("\(error)".contains("move it away"))
        }
        try FileManager.default.removeItem(atPath: root)
    }

    func mode(of path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    func testProblemDocumentsReadWell() throws {
        let json =
            #"{"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"Error creating new order","subproblems":[{"type":"urn:ietf:params:acme:error:malformed","detail":"bad name"}]}"#
        let problem = try JSONDecoder().decode(ACMEResource.Problem.self, from: Data(json.utf8))
        XCTAssertEqual(problem.description, "Error creating new order (rejectedIdentifier); bad name (malformed)")
    }
}

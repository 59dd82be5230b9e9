import Crypto
import GatewayCore
import NIOSSL
import SwiftASN1
import X509
import XCTest

@testable import GatewayTLS

final class CertificateMaterialTests: XCTestCase {
    func testSelfSignedCoversLoopbackNames() throws {
        let material = try CertificateMaterial.selfSigned(names: TLSSettings.loopbackNames)
        XCTAssertEqual(material.chain.count, 1)
        XCTAssertEqual(material.fingerprint.split(separator: ":").count, 32)
        let certificate = try Certificate(derEncoded: try material.chain[0].toDERBytes())
        let names = try XCTUnwrap(try certificate.extensions.subjectAlternativeNames)
        XCTAssertTrue(names.contains(.dnsName("localhost")))
        XCTAssertTrue(names.contains(.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))))
        XCTAssertEqual(names.count, 3)
        XCTAssertGreaterThan(certificate.notValidAfter, Date().addingTimeInterval(300 * 86400))
    }

    /// PEM text of a certificate for `key`, signed by itself.
    func pem(for key: P256.Signing.PrivateKey, extensions: Certificate.Extensions = .init()) throws -> String {
        let name = try DistinguishedName { CommonName("test") }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: .init(),
            publicKey: .init(key.publicKey),
            notValidBefore: Date(),
            notValidAfter: Date().addingTimeInterval(3600),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: .init(key)
        )
        return try certificate.serializeAsPEM().pemString
    }

    /// The hosts a read certificate is for: its DNS and IP subjectAltNames.
    func testReadCertificatesNameTheirHosts() throws {
        let key = P256.Signing.PrivateKey()
        let names = try Certificate.Extensions {
            SubjectAlternativeNames([.dnsName("GW.test"), .ipAddress(ASN1OctetString(contentBytes: [192, 0, 2, 1]))])
        }
        let material = try CertificateMaterial.parse(
            certificatePEM: Array(try pem(for: key, extensions: names).utf8),
            keyPEM: Array(key.pemRepresentation.utf8)
        )
        XCTAssertEqual(material.dnsNames, ["gw.test"])
        XCTAssertTrue(material.hosts.covers("192.0.2.1"))
        XCTAssertFalse(material.hosts.covers("192.0.2.2"))
    }

    func testMatchingPairLoads() throws {
        let key = P256.Signing.PrivateKey()
        let material = try CertificateMaterial.parse(
            certificatePEM: Array(try pem(for: key).utf8),
            keyPEM: Array(key.pemRepresentation.utf8)
        )
        XCTAssertEqual(material.subject, "CN=test")
    }

    func testKeyOfAnotherCertificateIsRefused() throws {
        let certificate = try pem(for: P256.Signing.PrivateKey())
        let otherKey = P256.Signing.PrivateKey()
        XCTAssertThrowsError(
            try CertificateMaterial.parse(
                certificatePEM: Array(certificate.utf8),
                keyPEM: Array(otherKey.pemRepresentation.utf8)
            )
        ) { error in
            XCTAssertEqual((error as? TLSMaterialError)?.code, .keyMismatch)
            XCTAssertEqual((error as? TLSMaterialError)?.field, .key)
        }
    }

    func testGarbageIsRefusedNamingTheField() throws {
        let key = P256.Signing.PrivateKey()
        XCTAssertThrowsError(
            try CertificateMaterial.parse(
                certificatePEM: Array("no pem here".utf8),
                keyPEM: Array(key.pemRepresentation.utf8)
            )
        ) { error in
            XCTAssertEqual((error as? TLSMaterialError)?.field, .certificate)
        }
        XCTAssertThrowsError(
            try CertificateMaterial.parse(certificatePEM: Array(try pem(for: key).utf8), keyPEM: Array("nope".utf8))
        ) { error in
            XCTAssertEqual((error as? TLSMaterialError)?.field, .key)
        }
        XCTAssertThrowsError(
            try CertificateMaterial.load(certificatePath: "/nonexistent.pem", keyPath: "/nonexistent.key")
        ) { error in
            XCTAssertEqual((error as? TLSMaterialError)?.code, .unreadable)
        }
    }

    func testServerTLSSwapsMaterial() throws {
        let settings = TLSSettings(source: .selfSigned(names: ["localhost"]))
        let first = try CertificateMaterial.selfSigned(names: ["localhost"])
        let tls = try ServerTLS(material: first, settings: settings)
        XCTAssertEqual(tls.material.fingerprint, first.fingerprint)
        let second = try CertificateMaterial.selfSigned(names: ["localhost"])
        try tls.replace(material: second, settings: settings)
        XCTAssertEqual(tls.material.fingerprint, second.fingerprint)
        XCTAssertNotEqual(first.fingerprint, second.fingerprint)
    }
}

final class ServerTLSNameTests: XCTestCase {
    func testSNINamesMatchExactlyOrByOneLabelWildcard() {
        XCTAssertTrue(ServerTLS.covers(["api.test"], "api.test"))
        XCTAssertTrue(ServerTLS.covers(["*.api.test"], "eu.api.test"))
        XCTAssertFalse(ServerTLS.covers(["*.api.test"], "api.test"))
        XCTAssertFalse(ServerTLS.covers(["*.api.test"], "a.b.api.test"))
        XCTAssertFalse(ServerTLS.covers(["api.test"], "other.test"))
    }

}

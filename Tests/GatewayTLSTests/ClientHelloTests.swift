import Crypto
import NIOCore
import NIOEmbedded
import NIOSSL
import SwiftASN1
import X509
import XCTest

@testable import GatewayTLS

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

final class ClientHelloTests: XCTestCase {
    /// The bytes BoringSSL's client really sends first, with this SNI and ALPN list.
    func clientHello(serverName: String?, protocols: [String]) throws -> [UInt8] {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.applicationProtocols = protocols
        let context = try NIOSSLContext(configuration: configuration)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            try NIOSSLClientHandler(context: context, serverHostname: serverName)
        )
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
        var bytes: [UInt8] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { bytes += buffer.readableBytesView }
        _ = try? channel.finish()
        return bytes
    }

    func testReadsServerNameAndProtocolsFromARealHello() throws {
        let bytes = try clientHello(serverName: "Gw.Test", protocols: ["acme-tls/1"])
        XCTAssertEqual(
            ClientHello.parse(bytes),
            .hello(ClientHello(serverName: "gw.test", applicationProtocols: ["acme-tls/1"]))
        )
        let browser = try clientHello(serverName: "example.org", protocols: ["h2", "http/1.1"])
        XCTAssertEqual(
            ClientHello.parse(browser),
            .hello(ClientHello(serverName: "example.org", applicationProtocols: ["h2", "http/1.1"]))
        )
        let bare = try clientHello(serverName: nil, protocols: [])
        XCTAssertEqual(ClientHello.parse(bare), .hello(ClientHello(serverName: nil, applicationProtocols: [])))
    }

    func testEveryPrefixIsIncompleteAndSplitRecordsJoin() throws {
        let bytes = try clientHello(serverName: "gw.test", protocols: ["acme-tls/1"])
        for end in 0..<bytes.count {
            XCTAssertEqual(ClientHello.parse(Array(bytes[0..<end])), .incomplete, "prefix of \(end) bytes")
        }
        // The same handshake message cut into two records, as a client may send it.
        let message = Array(bytes[5...])
        let cut = 40
        func record(_ body: ArraySlice<UInt8>) -> [UInt8] {
            [22, 3, 1, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
        }
        let split = record(message[0..<cut]) + record(message[cut...])
        XCTAssertEqual(ClientHello.parse(split), ClientHello.parse(bytes))
    }

    func testWhatIsNotAHelloIsLeftToTLS() throws {
        XCTAssertEqual(ClientHello.parse(Array("GET / HTTP/1.1\r\n\r\n".utf8)), .unreadable)
        var bytes = try clientHello(serverName: "gw.test", protocols: ["acme-tls/1"])
        bytes[5] = 2  // a ServerHello type
        XCTAssertEqual(ClientHello.parse(bytes), .unreadable)
        // A server_name list whose length overruns its extension.
        var corrupt = try clientHello(serverName: "gw.test", protocols: [])
        let name = Array("gw.test".utf8)
        let at = try XCTUnwrap(
            (0..<(corrupt.count - name.count)).first { Array(corrupt[$0..<($0 + name.count)]) == name }
        )
        corrupt[at - 2] = 0xFF
        XCTAssertEqual(ClientHello.parse(corrupt), .unreadable)
        // Found by the client-hello fuzz target (Fuzz/Corpus/client-hello/regression-empty-server-name):
        // a server_name list whose first HostName is empty was read as the name "" (RFC 6066
        // wants 1 byte or more; BoringSSL refuses it too).
        let emptyName = try XCTUnwrap(
            Data(
                base64Encoded:
                    "FgMBAMABAAC8AwNPnLQbehRepuIB3omvb+4sOZLKetsamL6Jeg8T3lgfpgAAHsAswDDAK8AvzKnMqMAkwCjAI8AnAJ8AngBr"
                    + "AGcA/wEAAHUAAAAQAA4AAAAAAAAAAAVlLmNvbQALAAQDAAECAAoADAAKAB0AFwAeABkAGAAjAAAAEAALAAkIaHR0cC8xLjEA"
                    + "FgAAABcAAAANACoAKAQDBQMGAwgHCAgICQgKVAQAAAAAAAAICwgECAUIBgQBBQEGAQMDAwEDAgQCBQIGAg=="
            )
        )
        XCTAssertEqual(ClientHello.parse([UInt8](emptyName)), .unreadable)
        // Endless records without a whole hello end as unreadable, not as a buffer that grows.
        let header: [UInt8] = [22, 3, 1, 0x40, 0x00, 1, 0xFF, 0xFF, 0xFF]
        XCTAssertEqual(ClientHello.parse(header + [UInt8](repeating: 0, count: 0x4000 - 4)), .unreadable)
    }

    func testChallengeCertificateCarriesTheDigestInACriticalExtension() throws {
        let keyAuthorization = "token-123.thumbprint-abc"
        let (certificate, key) = try ACMEChallenges.challengeCertificate(
            domain: "gw.test",
            keyAuthorization: keyAuthorization
        )
        XCTAssertEqual(
            try certificate.extensions.subjectAlternativeNames,
            SubjectAlternativeNames([.dnsName("gw.test")])
        )
        let identifier = try XCTUnwrap(certificate.extensions[oid: ACMEChallenges.acmeIdentifierOID])
        XCTAssertTrue(identifier.critical)
        let digest = try ASN1OctetString(derEncoded: identifier.value)
        XCTAssertEqual(Array(digest.bytes), Array(SHA256.hash(data: Array(keyAuthorization.utf8))))
        XCTAssertEqual(certificate.publicKey, Certificate.PublicKey(key.publicKey))
        // Pending answers are found by SNI, case-insensitively, until removed.
        let challenges = ACMEChallenges()
        try challenges.addTLSALPN01(domain: "GW.test", keyAuthorization: keyAuthorization)
        XCTAssertNotNil(challenges.tlsALPNContext(serverName: "gw.TEST"))
        challenges.removeTLSALPN01(domain: "gw.test")
        XCTAssertNil(challenges.tlsALPNContext(serverName: "gw.test"))
        challenges.addHTTP01(token: "t", keyAuthorization: "t.x")
        XCTAssertEqual(challenges.keyAuthorization(forToken: "t"), "t.x")
        challenges.removeHTTP01(token: "t")
        XCTAssertNil(challenges.keyAuthorization(forToken: "t"))
    }
}

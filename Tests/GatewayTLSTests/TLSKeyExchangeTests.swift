import GatewayCore
import NIOCore
import NIOEmbedded
import NIOSSL
import XCTest

@testable import GatewayTLS

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The key exchange a listener's context agrees to, read off the wire: a BoringSSL client and
/// the gateway's own server context (`ServerTLS`) handshake through two `EmbeddedChannel`s, and
/// the group is taken from the server's `ServerHello` (its `key_share` extension), not from any
/// API of the library under test.
final class TLSKeyExchangeTests: XCTestCase {
    static let x25519MLKEM768: UInt16 = 0x11EC
    static let x25519: UInt16 = 0x001D
    static let secp256r1: UInt16 = 0x0017

    /// The group in the ServerHello the gateway answers a client offering `curves` with (nil:
    /// the client library's defaults, as browsers send theirs).
    func negotiatedGroup(
        clientCurves: [NIOTLSCurve]?,
        minimumVersion: TLSSettings.Version = .tls12
    ) throws
        -> UInt16?
    {
        var settings = TLSSettings(source: .selfSigned(names: ["localhost"]))
        settings.minimumVersion = minimumVersion
        let tls = try ServerTLS(material: try CertificateMaterial.selfSigned(names: ["localhost"]), settings: settings)
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        configuration.curves = clientCurves
        let client = EmbeddedChannel()
        let server = EmbeddedChannel()
        defer {
            _ = try? client.finish()
            _ = try? server.finish()
        }
        try client.pipeline.syncOperations.addHandler(
            try NIOSSLClientHandler(
                context: try NIOSSLContext(configuration: configuration),
                serverHostname: "localhost"
            )
        )
        try server.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.context))
        try server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
        while let hello = try client.readOutbound(as: ByteBuffer.self) { try server.writeInbound(hello) }
        var answer: [UInt8] = []
        while let bytes = try server.readOutbound(as: ByteBuffer.self) { answer += bytes.readableBytesView }
        return Self.keyShareGroup(inServerHello: answer)
    }

    /// RFC 8446 §4.1.3 and §4.2.8: the record, the ServerHello's fixed fields, then its
    /// extensions, the key_share (51) one holding the group. Nil if any length does not add up.
    static func keyShareGroup(inServerHello bytes: [UInt8]) -> UInt16? {
        func u16(_ at: Int) -> Int? { at + 1 < bytes.count ? Int(bytes[at]) << 8 | Int(bytes[at + 1]) : nil }
        guard bytes.count > 43, bytes[0] == 22, bytes[5] == 2 else { return nil }  // handshake, ServerHello
        var at = 9 + 2 + 32  // record and handshake headers, legacy_version, random
        at += 1 + Int(bytes[at])  // legacy_session_id_echo
        at += 2 + 1  // cipher_suite, legacy_compression_method
        guard let extensionsLength = u16(at) else { return nil }
        at += 2
        let end = at + extensionsLength
        while at + 4 <= end, let type = u16(at), let length = u16(at + 2) {
            if type == 51 { return u16(at + 4).map(UInt16.init) }
            at += 4 + length
        }
        return nil
    }

    /// What the end-to-end test sends the built binary (`test_tls.py`): a ClientHello as
    /// BoringSSL's client writes it with its default groups (the hybrid's key share first).
    /// `WSSGATE_RECORD_FIXTURES=1` writes it again.
    func testTheRecordedBoringSSLClientHelloOffersTheHybrid() throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("EndToEnd/fixtures/boringssl-client-hello.bin")
        if ProcessInfo.processInfo.environment["WSSGATE_RECORD_FIXTURES"] != nil {
            let channel = EmbeddedChannel()
            try channel.pipeline.syncOperations.addHandler(
                try NIOSSLClientHandler(
                    context: try NIOSSLContext(configuration: .makeClientConfiguration()),
                    serverHostname: "localhost"
                )
            )
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
            var hello: [UInt8] = []
            while let bytes = try channel.readOutbound(as: ByteBuffer.self) { hello += bytes.readableBytesView }
            _ = try? channel.finish()
            try Data(hello).write(to: fixture)
        }
        let hello = try [UInt8](Data(contentsOf: fixture))
        XCTAssertEqual(ClientHello.parse(hello), .hello(ClientHello(serverName: "localhost", applicationProtocols: [])))
        // The supported_groups list starts with the hybrid: 0x11EC as its first entry.
        XCTAssertNotNil(hello.firstRange(of: [0x00, 0x0A, 0x00, 0x0A, 0x00, 0x08, 0x11, 0xEC]), "\(hello)")
    }

    func testAClientThatOffersTheHybridGetsX25519MLKEM768() throws {
        // BoringSSL's client defaults, like browsers', offer X25519MLKEM768 first.
        XCTAssertEqual(try negotiatedGroup(clientCurves: nil), Self.x25519MLKEM768)
        XCTAssertEqual(try negotiatedGroup(clientCurves: [.x25519_MLKEM768, .x25519]), Self.x25519MLKEM768)
        XCTAssertEqual(try negotiatedGroup(clientCurves: nil, minimumVersion: .tls13), Self.x25519MLKEM768)
    }

    func testAClientWithoutItGetsAClassicGroup() throws {
        XCTAssertEqual(try negotiatedGroup(clientCurves: [.x25519]), Self.x25519)
        XCTAssertEqual(try negotiatedGroup(clientCurves: [.secp256r1]), Self.secp256r1)
    }
}

import Crypto
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import SwiftASN1
import X509
import XCTest

@testable import GatewayACME

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The ACME HTTPS client against a real NIO HTTPS server on loopback: its answer limit and its
/// deadline are crossed, and a well-formed answer still comes through.
final class ACMEHTTPClientTests: XCTestCase {
    /// Answers every request with `bodyBytes` bytes, or never when nil.
    final class Answerer: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let bodyBytes: Int?
        init(bodyBytes: Int?) { self.bodyBytes = bodyBytes }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .end = unwrapInboundIn(data), let bodyBytes else { return }
            let head = HTTPResponseHead(
                version: .http1_1,
                status: .ok,
                headers: ["Content-Length": String(bodyBytes), "Replay-Nonce": "abc"]
            )
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(
                wrapOutboundOut(.body(.byteBuffer(ByteBuffer(repeating: 0x41, count: bodyBytes)))),
                promise: nil
            )
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    /// A self-signed certificate for 127.0.0.1 that may act as its own trust root (as openssl's
    /// `req -x509` makes them, and as Pebble's HTTPS certificate is in the end-to-end tests).
    static func selfSignedRoot() throws -> (NIOSSLCertificate, NIOSSLPrivateKey) {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("127.0.0.1") }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
            SubjectAlternativeNames([.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))])
        }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: .init(),
            publicKey: .init(key.publicKey),
            notValidBefore: Date().addingTimeInterval(-60),
            notValidAfter: Date().addingTimeInterval(3600),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: .init(key)
        )
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return (
            try NIOSSLCertificate(bytes: serializer.serializedBytes, format: .der),
            try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem)
        )
    }

    func withServer(bodyBytes: Int?, _ body: (Int, NIOSSLCertificate) async throws -> Void) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let (certificate, key) = try Self.selfSignedRoot()
        let context = try NIOSSLContext(
            configuration: .makeServerConfiguration(
                certificateChain: [.certificate(certificate)],
                privateKey: .privateKey(key)
            )
        )
        let server = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Answerer(bodyBytes: bodyBytes))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        do {
            try await body(server.localAddress!.port!, certificate)
        } catch {
            try? await server.close()
            try? await group.shutdownGracefully()
            throw error
        }
        try await server.close()
        try await group.shutdownGracefully()
    }

    func testAWellFormedAnswerComesThrough() async throws {
        try await withServer(bodyBytes: 1000) { port, root in
            let client = try ACMEHTTPClient(
                group: MultiThreadedEventLoopGroup.singleton,
                trustRoots: [root],
                userAgent: "test"
            )
            let response = try await client.send(.GET, "https://127.0.0.1:\(port)/dir")
            XCTAssertEqual(response.status, 200)
            XCTAssertEqual(response.body.count, 1000)
            XCTAssertEqual(response.headers.first(name: "replay-nonce"), "abc")
        }
    }

    func testAnAnswerOverOneMebibyteIsRefused() async throws {
        try await withServer(bodyBytes: ACMEHTTPClient.maximumBodyBytes + 1) { port, root in
            let client = try ACMEHTTPClient(
                group: MultiThreadedEventLoopGroup.singleton,
                trustRoots: [root],
                userAgent: "test"
            )
            let error = try await Self.failure(of: client, port: port, "an oversized answer was accepted")
            XCTAssertEqual(error?.code, .protocolViolation)
            XCTAssertTrue(error?.message.contains("larger than") == true, error?.message ?? "")
        }
    }

    func testAServerThatNeverAnswersMeetsTheDeadline() async throws {
        try await withServer(bodyBytes: nil) { port, root in
            let client = try ACMEHTTPClient(
                group: MultiThreadedEventLoopGroup.singleton,
                trustRoots: [root],
                timeout: .milliseconds(300),
                userAgent: "test"
            )
            let started = ContinuousClock.now
            let error = try await Self.failure(of: client, port: port, "no answer, yet the request succeeded")
            XCTAssertEqual(error?.code, .unreachable)
            XCTAssertTrue(error?.message.contains("no answer within") == true, error?.message ?? "")
            XCTAssertLessThan(ContinuousClock.now - started, .seconds(5))
        }
    }

    func testAnUntrustedServerIsRefused() async throws {
        try await withServer(bodyBytes: 10) { port, _ in
            let other = try Self.selfSignedRoot().0
            let client = try ACMEHTTPClient(
                group: MultiThreadedEventLoopGroup.singleton,
                trustRoots: [other],
                userAgent: "test"
            )
            let error = try await Self.failure(of: client, port: port, "a certificate nobody vouches for was accepted")
            XCTAssertEqual(error?.code, .unreachable)
        }
    }

    /// The ACME error a GET of `/dir` ends with; nil (and a failure named `unexpected`) when it
    /// succeeds. Any other error fails the test by propagating.
    static func failure(of client: ACMEHTTPClient, port: Int, _ unexpected: String) async throws -> ACMEError? {
        do {
            _ = try await client.send(.GET, "https://127.0.0.1:\(port)/dir")
            XCTFail(unexpected)
            return nil
        } catch let error as ACMEError {
            return error
        }
    }
}

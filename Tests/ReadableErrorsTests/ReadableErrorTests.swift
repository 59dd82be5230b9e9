import NIOCore
import NIOPosix
import NIOSSL
import ReadableErrors
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Errors as an operator reads them: no system-call names, type dumps or build paths.
final class ReadableErrorTests: XCTestCase {
    func testSystemErrorsAreTheirSentence() {
        XCTAssertEqual(
            ReadableError.describe(IOError(errnoCode: ECONNREFUSED, reason: "connect")),
            "connection refused"
        )
        XCTAssertEqual(
            ReadableError.describe(IOError(errnoCode: EACCES, reason: "bind(descriptor:ptr:bytes:)")),
            "permission denied"
        )
        XCTAssertEqual(
            ReadableError.describe(ChannelError.connectTimeout(.milliseconds(2500))),
            "no connection within 2.5 s"
        )
    }

    func testAFailedConnectionIsItsFirstError() async throws {
        // A port nothing listens on: NIO's NIOConnectionError wraps the refusal.
        let group = MultiThreadedEventLoopGroup.singleton
        let probe = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let port = probe.localAddress!.port!
        try await probe.close()
        do {
            _ = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).get()
            XCTFail("connected to a closed port")
        } catch {
            XCTAssertEqual(ReadableError.describe(error), "connection refused")
        }
    }

    func testBoringSSLReasonsWithoutBuildPaths() {
        let text =
            "handshakeFailed(NIOSSL.BoringSSLError.sslError([Error: 268435581 error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED at /build/checkouts/swift-nio-ssl/Sources/CNIOBoringSSL/ssl/handshake.cc:393]))"
        XCTAssertEqual(ReadableError.boringSSLReasons(text), "certificate verify failed")
    }

    func testSourcePathsLeaveAnyDescription() {
        XCTAssertEqual(
            ReadableError.withoutSourcePaths(
                "ServiceGroupError(errorCode: serviceFinishedUnexpectedly, file: \"/work/.build/checkouts/x/ServiceGroup.swift\", line: 812)"
            ),
            "ServiceGroupError(errorCode: serviceFinishedUnexpectedly)"
        )
        XCTAssertEqual(ReadableError.withoutSourcePaths("failed at /a/b.c:12, twice"), "failed, twice")
    }
}

import NIOCore
import NIOEmbedded
import XCTest

@testable import GatewayEdge

final class HTTPRequestGuardTests: XCTestCase {
    func makeChannel(limit: Int = 1024) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            HTTPRequestGuard(maxHeaderBytes: limit, headerTimeout: .seconds(10), idleTimeout: .seconds(60))
        )
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    func response(_ channel: EmbeddedChannel) throws -> String? {
        try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) }
    }

    func testHeadOverTheLimitIs431() throws {
        let channel = try makeChannel()
        try channel.writeInbound(ByteBuffer(string: "GET /" + String(repeating: "a", count: 9000)))
        XCTAssertNil(try response(channel))  // 9000 < 1024 + 8192: still allowed
        try channel.writeInbound(ByteBuffer(string: String(repeating: "a", count: 300)))
        XCTAssertTrue(try response(channel)?.hasPrefix("HTTP/1.1 431") ?? false)
        _ = try? channel.finish()
    }

    func testBytesAfterTheHeadDoNotCount() throws {
        let channel = try makeChannel()
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n"))
        _ = try channel.readInbound(as: ByteBuffer.self)
        channel.pipeline.triggerUserOutboundEvent(HTTPRequestGuard.Event.headReceived, promise: nil)
        try channel.writeInbound(ByteBuffer(repeating: 0, count: 100_000))
        XCTAssertNil(try response(channel))
        XCTAssertTrue(channel.isActive)
        _ = try? channel.finish()
    }

    func testSlowHeadIs408() throws {
        let channel = try makeChannel()
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\n"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        XCTAssertNil(try response(channel))
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        XCTAssertTrue(try response(channel)?.hasPrefix("HTTP/1.1 408") ?? false)
        _ = try? channel.finish()
    }

    func testIdleKeepAliveConnectionIsClosedQuietly() throws {
        let channel = try makeChannel()
        channel.pipeline.triggerUserOutboundEvent(HTTPRequestGuard.Event.headReceived, promise: nil)
        channel.pipeline.triggerUserOutboundEvent(HTTPRequestGuard.Event.responseComplete, promise: nil)
        channel.embeddedEventLoop.advanceTime(by: .seconds(59))
        XCTAssertTrue(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        XCTAssertFalse(channel.isActive)
        XCTAssertNil(try response(channel))
    }

    /// A body that never ends holds its connection no longer than a slow head would.
    func testABodyThatNeverEndsIs408() throws {
        let channel = try makeChannel()
        try channel.writeInbound(ByteBuffer(string: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"))
        _ = try channel.readInbound(as: ByteBuffer.self)
        channel.pipeline.triggerUserOutboundEvent(HTTPRequestGuard.Event.headReceived, promise: nil)
        try channel.writeInbound(ByteBuffer(repeating: 0, count: 1000))
        _ = try channel.readInbound(as: ByteBuffer.self)
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        XCTAssertNil(try response(channel))
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        let answer = try response(channel)
        XCTAssertTrue(answer?.hasPrefix("HTTP/1.1 408") ?? false)
        XCTAssertTrue(answer?.hasSuffix("request body not received in time\n") ?? false, answer ?? "")
        _ = try? channel.finish()
    }

    /// Once the request is whole, answering it takes as long as it takes (a worker deciding).
    func testAWholeRequestIsNotTimed() throws {
        let channel = try makeChannel()
        channel.pipeline.triggerUserOutboundEvent(HTTPRequestGuard.Event.headReceived, promise: nil)
        channel.pipeline.triggerUserOutboundEvent(HTTPRequestGuard.Event.requestEnded, promise: nil)
        channel.embeddedEventLoop.advanceTime(by: .seconds(30))
        XCTAssertTrue(channel.isActive)
        XCTAssertNil(try response(channel))
        _ = try? channel.finish()
    }
}

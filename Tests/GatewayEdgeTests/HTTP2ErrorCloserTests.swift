import NIOCore
import NIOEmbedded
import XCTest

@testable import GatewayEdge

/// After a GOAWAY for an error the connection is closed (RFC 9113 §5.4.1); a drain's
/// GOAWAY (NO_ERROR) and ordinary frames leave it open.
final class HTTP2ErrorCloserTests: XCTestCase {
    private var channel: EmbeddedChannel!

    override func setUp() {
        channel = EmbeddedChannel(handler: HTTP2ErrorCloser())
        XCTAssertNoThrow(try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait())
    }

    override func tearDown() {
        if channel.isActive { XCTAssertTrue(try channel.finish().isClean) }
        channel = nil
    }

    private func frame(type: UInt8, payload: [UInt8], stream: UInt32 = 0) -> [UInt8] {
        let length = payload.count
        return [UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), type, 0]
            + [UInt8(stream >> 24 & 0x7F), UInt8(stream >> 16 & 0xFF), UInt8(stream >> 8 & 0xFF), UInt8(stream & 0xFF)]
            + payload
    }

    private func goAway(code: UInt32) -> [UInt8] {
        frame(
            type: 7,
            payload: [0, 0, 0, 5] + [
                UInt8(code >> 24), UInt8(code >> 16 & 0xFF), UInt8(code >> 8 & 0xFF), UInt8(code & 0xFF),
            ]
        )
    }

    private func write(_ bytes: [UInt8]) throws {
        try channel.writeAndFlush(ByteBuffer(bytes: bytes)).wait()
        _ = try channel.readOutbound(as: ByteBuffer.self)
    }

    func testAGoAwayForAnErrorClosesOnceWritten() throws {
        try write(frame(type: 4, payload: []) + frame(type: 0, payload: Array(repeating: 7, count: 300), stream: 1))
        XCTAssertTrue(channel.isActive)
        // A GOAWAY split across writes, behind a DATA frame, with PROTOCOL_ERROR (1).
        let bytes = frame(type: 0, payload: [1, 2, 3], stream: 1) + goAway(code: 1)
        try write(Array(bytes[0..<14]))
        XCTAssertTrue(channel.isActive)
        try write(Array(bytes[14...]))
        channel.embeddedEventLoop.run()
        XCTAssertFalse(channel.isActive)
    }

    func testADrainsGoAwayLeavesTheConnectionOpen() throws {
        try write(goAway(code: 0))
        try write(frame(type: 6, payload: Array(repeating: 0, count: 8)))
        XCTAssertTrue(channel.isActive)
    }

    func testAClientThatTakesNothingIsClosedAfterTheGrace() throws {
        // The write never completes (a promise nobody fulfils stands for a full socket).
        let closer = HTTP2ErrorCloser()
        let stuck = EmbeddedChannel()
        try stuck.pipeline.syncOperations.addHandler(StallingWrites())
        try stuck.pipeline.syncOperations.addHandler(closer)
        try stuck.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        stuck.writeAndFlush(ByteBuffer(bytes: goAway(code: 11)), promise: nil)
        XCTAssertTrue(stuck.isActive)
        stuck.embeddedEventLoop.advanceTime(by: HTTP2ErrorCloser.grace)
        XCTAssertFalse(stuck.isActive)
    }
}

/// Holds every write without completing it.
private final class StallingWrites: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    private var held: [EventLoopPromise<Void>?] = []
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) { held.append(promise) }
    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        for promise in held { promise?.fail(ChannelError.ioOnClosedChannel) }
        held = []
        context.close(mode: mode, promise: promise)
    }
}

import NIOCore
import NIOEmbedded
import XCTest

@testable import GatewayEdge

/// The proxy's pass-through between two in-memory channels on one loop: bytes pass unchanged,
/// and a drain closes both sides at frame boundaries with the handshake each peer expects.
final class GlueHandlerTests: XCTestCase {
    var loop: EmbeddedEventLoop!
    var client: EmbeddedChannel!
    var upstream: EmbeddedChannel!

    override func setUp() {
        loop = EmbeddedEventLoop()
        client = EmbeddedChannel(loop: loop)
        upstream = EmbeddedChannel(loop: loop)
        let (clientSide, upstreamSide) = GlueHandler.matchedPair(drain: .init(spread: .zero, closeTimeout: .seconds(5)))
        XCTAssertNoThrow(try client.pipeline.syncOperations.addHandler(clientSide))
        XCTAssertNoThrow(try upstream.pipeline.syncOperations.addHandler(upstreamSide))
        XCTAssertNoThrow(try client.connect(to: .init(ipAddress: "127.0.0.1", port: 1)).wait())
        XCTAssertNoThrow(try upstream.connect(to: .init(ipAddress: "127.0.0.1", port: 2)).wait())
    }

    override func tearDown() {
        _ = try? client.finish()
        _ = try? upstream.finish()
    }

    func send(_ bytes: [UInt8], from channel: EmbeddedChannel) throws {
        try channel.writeInbound(ByteBuffer(bytes: bytes))
    }

    func written(by channel: EmbeddedChannel) throws -> [UInt8] {
        var all: [UInt8] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { all += buffer.readableBytesView }
        return all
    }

    func testBytesPassUnchanged() throws {
        let masked: [UInt8] = [0x81, 0x83, 1, 2, 3, 4, 0x60, 0x61, 0x62]
        try send(masked, from: client)
        XCTAssertEqual(try written(by: upstream), masked)
        let plain: [UInt8] = [0x81, 0x02, 0x68, 0x69]
        try send(plain, from: upstream)
        XCTAssertEqual(try written(by: client), plain)
    }

    func testDrainWaitsForTheFrameInFlightThenClosesBothWays() throws {
        // The upstream is halfway through a frame to the client when the drain comes.
        let message: [UInt8] = [0x82, 0x06] + [UInt8](repeating: 7, count: 6)
        try send(Array(message[0..<4]), from: upstream)
        XCTAssertEqual(try written(by: client), Array(message[0..<4]))
        client.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        loop.run()
        // Toward the upstream, at a boundary already: a masked close 1001 at once.
        let toUpstream = try written(by: upstream)
        XCTAssertEqual(toUpstream[0], 0x88)
        XCTAssertEqual(toUpstream[1] & 0x80, 0x80, "a client's frames are masked")
        let mask = Array(toUpstream[2..<6])
        let code = (UInt16(toUpstream[6] ^ mask[0]) << 8) | UInt16(toUpstream[7] ^ mask[1])
        XCTAssertEqual(code, 1001)
        // Toward the client nothing yet: the frame in flight must end first.
        XCTAssertEqual(try written(by: client), [])
        // The rest of it and a frame behind it: the rest passes, then our close; the later frame is dropped.
        try send(Array(message[4...]) + [0x81, 0x01, 0x78], from: upstream)
        let toClient = try written(by: client)
        XCTAssertEqual(Array(toClient[0..<4]), Array(message[4...]))
        XCTAssertEqual(Array(toClient[4..<8]), [0x88, UInt8(toClient.count - 6), 0x03, 0xE9])
        // Both peers answer with their closes: both connections close, the client's first.
        try send([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE9], from: client)
        XCTAssertTrue(client.isActive && upstream.isActive, "the upstream has not answered yet")
        try send([0x88, 0x02, 0x03, 0xE9], from: upstream)
        loop.run()
        XCTAssertFalse(client.isActive)
        XCTAssertFalse(upstream.isActive)
    }

    func testAPeerThatDoesNotAnswerIsCutAfterTheCloseTimeout() throws {
        client.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        loop.run()
        _ = try written(by: client)
        _ = try written(by: upstream)
        loop.advanceTime(by: .seconds(4))
        XCTAssertTrue(client.isActive)
        loop.advanceTime(by: .seconds(2))
        XCTAssertFalse(client.isActive)
        XCTAssertFalse(upstream.isActive)
    }
}

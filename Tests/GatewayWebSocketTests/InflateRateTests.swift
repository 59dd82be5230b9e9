import GatewayCore
import Logging
import NIOCore
import NIOEmbedded
import NIOWebSocket
import SessionTestSupport
import XCTest

@testable import GatewayWebSocket

/// A client whose compressed frames inflate past `max_inflated_bytes_per_second` is read later,
/// not closed: what it sent waits, and nothing more is read meanwhile.
final class InflateRateTests: XCTestCase {
    var channel: EmbeddedChannel!
    var session: WebSocketSessionHandler!
    var reads = ReadCounter()

    override func tearDown() {
        guard let channel else { return }
        XCTAssertNoThrow(
            XCTAssertTrue(try channel.finish(acceptAlreadyClosed: true).isClean, "frames were left unread")
        )
    }

    private func makeSession(limits: WebSocketLimits) throws -> PerMessageDeflateParameters {
        let deflate = try XCTUnwrap(
            PerMessageDeflateNegotiation.negotiate(headerValues: ["permessage-deflate"], settings: .init())
        )
        channel = EmbeddedChannel()
        session = WebSocketSessionHandler(
            configuration: .init(routeName: "echo", limits: limits, deflate: deflate, subprotocol: nil),
            application: EchoApplication(),
            peer: "test",
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        try channel.pipeline.syncOperations.addHandlers([reads, WireFrameAdapter(), session])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return deflate
    }

    /// A masked binary frame with RSV1 set: `payload` as permessage-deflate sends it.
    private func compressedFrame(_ payload: ByteBuffer) -> ByteBuffer {
        var frame = ByteBuffer()
        frame.writeInteger(UInt8(0xC2))
        frame.writeInteger(UInt8(0x80 | 126))
        frame.writeInteger(UInt16(payload.readableBytes))
        frame.writeBytes([0, 0, 0, 0])  // a zero key leaves the payload as it is
        frame.writeImmutableBuffer(payload)
        return frame
    }

    private func echoes() throws -> Int {
        var count = 0
        while let frame = try channel.readOutbound(as: WebSocketFrame.self) {
            XCTAssertEqual(frame.opcode, .binary)
            XCTAssertTrue(frame.rsv1)
            count += 1
        }
        return count
    }

    func testFramesPastTheRateWaitAndNothingMoreIsRead() throws {
        let parameters = try makeSession(limits: WebSocketLimits(maxInflatedBytesPerSecond: 1 << 20))
        let sender = PerMessageDeflate(parameters: parameters)
        let compressed = try sender.compress(ByteBuffer(repeating: 0x61, count: 512 << 10), allocator: .init())
        XCTAssertLessThan(compressed.readableBytes, 2048)
        var input = ByteBuffer()
        for _ in 0..<5 { input.writeImmutableBuffer(compressedFrame(compressed)) }
        let context = try channel.pipeline.syncOperations.context(handlerType: WireFrameAdapter.self)
        context.fireChannelRead(NIOAny(input))
        context.fireChannelReadComplete()
        // The burst (1 MiB) and the frame that went past it are served; the rest wait.
        XCTAssertEqual(try echoes(), 3)
        let before = reads.count
        channel.read()
        XCTAssertEqual(reads.count, before, "no read while over the rate")
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(400))
        XCTAssertEqual(try echoes(), 0)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(600))
        XCTAssertEqual(try echoes(), 1, "one frame per turn while in debt")
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        XCTAssertEqual(try echoes(), 1)
        XCTAssertEqual(session.statistics.messagesIn, 5)
        XCTAssertTrue(session.isOpen, "a client over the rate is slowed, not closed")
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        XCTAssertEqual(reads.count, before + 1, "the read asked for meanwhile happens once the rate allows")
    }

    func testARateOfZeroReadsEverythingAtOnce() throws {
        let parameters = try makeSession(limits: WebSocketLimits(maxInflatedBytesPerSecond: 0))
        let sender = PerMessageDeflate(parameters: parameters)
        let compressed = try sender.compress(ByteBuffer(repeating: 0x61, count: 512 << 10), allocator: .init())
        var input = ByteBuffer()
        for _ in 0..<5 { input.writeImmutableBuffer(compressedFrame(compressed)) }
        let context = try channel.pipeline.syncOperations.context(handlerType: WireFrameAdapter.self)
        context.fireChannelRead(NIOAny(input))
        context.fireChannelReadComplete()
        XCTAssertEqual(try echoes(), 5)
    }
}

/// Counts the reads that reach the head of the pipeline.
final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = Any
    private(set) var count = 0

    func read(context: ChannelHandlerContext) {
        count += 1
        context.read()
    }
}

import NIOCore
import NIOEmbedded
import XCTest

@testable import GatewayEdge

/// The SETTINGS a client sees advertise the streams the gateway serves, not what NIO enforces.
final class AdvertisedStreamLimitTests: XCTestCase {
    private var channel: EmbeddedChannel!

    override func tearDown() {
        XCTAssertNoThrow(XCTAssertTrue(try channel.finish(acceptAlreadyClosed: true).isClean))
    }

    /// A frame's bytes: 9-byte header, then `payload`.
    private func frame(type: UInt8, flags: UInt8 = 0, stream: UInt32 = 0, _ payload: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(payload.count) << 8 | UInt32(type))
        buffer.writeInteger(flags)
        buffer.writeInteger(stream)
        buffer.writeBytes(payload)
        return buffer
    }

    private func setting(_ id: UInt16, _ value: UInt32) -> [UInt8] {
        var buffer = ByteBuffer()
        buffer.writeInteger(id)
        buffer.writeInteger(value)
        return Array(buffer.readableBytesView)
    }

    func testThePrefaceAdvertisesTheLimitAndTheHandlerLeaves() throws {
        channel = EmbeddedChannel(handler: AdvertisedStreamLimit(advertised: 100))
        var preface = frame(type: 4, setting(0x3, 200) + setting(0x6, 16384) + setting(0x8, 1))
        preface.writeImmutableBuffer(frame(type: 8, [0, 0, 0, 1]))
        try channel.writeOutbound(IOData.byteBuffer(preface))
        let written = try XCTUnwrap(try channel.readOutbound(as: IOData.self))
        guard case .byteBuffer(let bytes) = written else { return XCTFail("not bytes") }
        var expected = frame(type: 4, setting(0x3, 100) + setting(0x6, 16384) + setting(0x8, 1))
        expected.writeImmutableBuffer(frame(type: 8, [0, 0, 0, 1]))
        XCTAssertEqual(bytes, expected, "only the stream limit changes")
        XCTAssertThrowsError(try channel.pipeline.syncOperations.handler(type: AdvertisedStreamLimit.self))
    }

    func testOtherFramesAreLeftAlone() {
        channel = EmbeddedChannel()
        let handler = AdvertisedStreamLimit(advertised: 100)
        for original in [
            frame(type: 4, flags: 1, []),  // an ACK
            frame(type: 4, stream: 1, setting(0x3, 200)),  // not on stream 0
            frame(type: 6, setting(0x3, 200) + [0, 0]),  // a PING
            frame(type: 4, setting(0x3, 200)).getSlice(at: 0, length: 12)!,  // cut short
        ] {
            var buffer = original
            handler.rewrite(&buffer)
            XCTAssertEqual(buffer, original)
        }
    }
}

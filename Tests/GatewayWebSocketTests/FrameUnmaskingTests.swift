import NIOCore
import NIOWebSocket
import XCTest

@testable import GatewayWebSocket

final class FrameUnmaskingTests: XCTestCase {
    /// The word-at-a-time unmasking gives what NIOWebSocket's byte-at-a-time one gives, for every
    /// length around the word size and for a payload behind extension data.
    func testSameAsNIOWebSocketsUnmasking() throws {
        var generator = SystemRandomNumberGenerator()
        for length in Array(0...40) + [4093, 4096, 65_537] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let key = try XCTUnwrap(WebSocketMaskingKey((0..<4).map { _ in UInt8.random(in: 0...255) }))
            let frame = WebSocketFrame(fin: true, opcode: .binary, maskKey: key, data: ByteBuffer(bytes: bytes))
            XCTAssertEqual(frame.unmaskedPayload, frame.unmaskedData, "length \(length)")
            for extensionLength in 1...3 {
                let withExtension = WebSocketFrame(
                    fin: true,
                    opcode: .binary,
                    maskKey: key,
                    data: ByteBuffer(bytes: bytes),
                    extensionData: ByteBuffer(repeating: 0, count: extensionLength)
                )
                XCTAssertEqual(withExtension.unmaskedPayload, withExtension.unmaskedData)
            }
        }
    }

    func testASharedBufferIsNotTouched() throws {
        let whole = ByteBuffer(bytes: Array(0..<64))
        let slice = whole.getSlice(at: 8, length: 20)!
        let key = try XCTUnwrap(WebSocketMaskingKey([1, 2, 3, 4]))
        let frame = WebSocketFrame(fin: true, opcode: .binary, maskKey: key, data: slice)
        XCTAssertEqual(frame.unmaskedPayload, frame.unmaskedData)
        XCTAssertEqual(whole, ByteBuffer(bytes: Array(0..<64)), "the read buffer keeps its bytes")
    }

    func testAnUnmaskedFrameIsAsItIs() {
        let frame = WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: "plain"))
        XCTAssertEqual(frame.unmaskedPayload, ByteBuffer(string: "plain"))
    }
}

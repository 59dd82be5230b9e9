import NIOCore
import NIOWebSocket
import XCTest

@testable import GatewayWebSocket

final class FrameUnmaskingTests: XCTestCase {
    /// A key's four bytes in memory order, as the parser reads them.
    private func mask(of key: WebSocketMaskingKey) -> UInt32 {
        var mask: UInt32 = 0
        withUnsafeMutableBytes(of: &mask) { bytes in
            for index in 0..<4 { bytes[index] = key[index] }
        }
        return mask
    }

    /// The word-at-a-time unmasking copy gives what NIOWebSocket's byte-at-a-time unmasking
    /// gives, for every length around the word size.
    func testSameAsNIOWebSocketsUnmasking() throws {
        var generator = SystemRandomNumberGenerator()
        for length in Array(0...40) + [4093, 4096, 65_537] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let key = try XCTUnwrap(WebSocketMaskingKey((0..<4).map { _ in UInt8.random(in: 0...255) }))
            let frame = WebSocketFrame(fin: true, opcode: .binary, maskKey: key, data: ByteBuffer(bytes: bytes))
            let copy = FrameUnmasking.unmaskedCopy(
                of: frame.data,
                mask: self.mask(of: key),
                allocator: ByteBufferAllocator()
            )
            XCTAssertEqual(copy, frame.unmaskedData, "length \(length)")
        }
    }

    /// The payload is a slice of NIO's read buffer: the copy leaves it as it was.
    func testTheReadBufferIsNotTouched() throws {
        let whole = ByteBuffer(bytes: Array(0..<64))
        let slice = whole.getSlice(at: 8, length: 20)!
        let key = try XCTUnwrap(WebSocketMaskingKey([1, 2, 3, 4]))
        let frame = WebSocketFrame(fin: true, opcode: .binary, maskKey: key, data: slice)
        XCTAssertEqual(
            FrameUnmasking.unmaskedCopy(
                of: slice,
                mask: self.mask(of: key),
                allocator: ByteBufferAllocator()
            ),
            frame.unmaskedData
        )
        XCTAssertEqual(whole, ByteBuffer(bytes: Array(0..<64)), "the read buffer keeps its bytes")
    }
}

import NIOCore
import NIOWebSocket
import SessionTestSupport
import XCTest

@testable import GatewayWebSocket

final class WebSocketFrameParserTests: XCTestCase {
    let parser = WebSocketFrameParser(maxFrameBytes: 70_000)
    let key = WebSocketMaskingKey([9, 8, 7, 6])!

    /// Frames of each length encoding (7-bit, 16-bit, 64-bit), masked and not, back to back in
    /// one buffer: each comes out whole, in order, with its bits, and the buffer is consumed.
    func testFramesOfEveryLengthEncodingBackToBack() throws {
        var wire = ByteBuffer()
        let lengths = [0, 1, 125, 126, 65_535, 65_536]
        for (index, length) in lengths.enumerated() {
            var frame = WebSocketFrame(
                fin: index % 2 == 0,
                opcode: index % 2 == 0 ? .binary : .continuation,
                maskKey: index % 3 == 0 ? nil : key,
                data: ByteBuffer(repeating: UInt8(index), count: length)
            )
            frame.rsv1 = index == 1
            var bytes = WireFrameAdapter.encode(frame)
            wire.writeBuffer(&bytes)
        }
        for (index, length) in lengths.enumerated() {
            let frame = try XCTUnwrap(try parser.parse(&wire), "frame \(index)")
            XCTAssertEqual(frame.fin, index % 2 == 0)
            XCTAssertEqual(frame.rsv1, index == 1)
            XCTAssertEqual(frame.opcode, index % 2 == 0 ? .binary : .continuation)
            XCTAssertEqual(frame.maskKey, index % 3 == 0 ? nil : key)
            XCTAssertEqual(frame.payload, ByteBuffer(repeating: UInt8(index), count: length))
        }
        XCTAssertEqual(wire.readableBytes, 0)
        XCTAssertNil(try parser.parse(&wire))
    }

    /// A frame cut anywhere is not parsed and nothing is consumed; the whole frame's length is
    /// known as soon as its header is in.
    func testAPartialFrameIsLeftWhole() throws {
        let whole = WireFrameAdapter.encode(
            WebSocketFrame(fin: true, opcode: .text, maskKey: key, data: ByteBuffer(repeating: 0x41, count: 300))
        )
        for cut in 0..<whole.readableBytes {
            var part = whole.getSlice(at: 0, length: cut)!
            XCTAssertNil(try parser.parse(&part), "cut at \(cut)")
            XCTAssertEqual(part.readableBytes, cut)
            XCTAssertEqual(try parser.frameBytes(part), cut >= 8 ? 308 : nil, "cut at \(cut)")
        }
    }

    /// Each framing rule, crossed: the failure and the close code RFC 6455 gives it, as soon
    /// as the header shows it (the payload need not have arrived).
    func testFramingRulesAreEnforcedFromTheHeader() {
        func failure(_ bytes: [UInt8]) -> WebSocketFrameParser.Failure? {
            var buffer = ByteBuffer(bytes: bytes)
            do {
                _ = try parser.parse(&buffer)
                return nil
            } catch {
                return error
            }
        }
        // 70,001 bytes announced with a 64-bit length; the limit is 70,000.
        let tooLarge = failure([0x82, 0xFF, 0, 0, 0, 0, 0, 0x01, 0x11, 0x71, 1, 2, 3, 4])
        XCTAssertEqual(tooLarge?.code, .frameTooLarge)
        XCTAssertEqual(tooLarge?.closeCode, .messageTooLarge)
        XCTAssertNil(failure([0x82, 0xFF, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70, 1, 2, 3, 4]), "70,000 is allowed")
        XCTAssertEqual(failure([0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 1]), .init(code: .invalidLength))
        XCTAssertEqual(failure([0x09, 0x80, 1, 2, 3, 4]), .init(code: .fragmentedControlFrame))
        let longPing = failure([0x89, 0xFE, 0, 126, 1, 2, 3, 4])
        XCTAssertEqual(longPing?.code, .controlFrameTooLong)
        XCTAssertEqual(longPing?.closeCode, .protocolError)
        XCTAssertNil(failure([0x89, 0xFD, 1, 2, 3, 4]), "a ping of 125 bytes is allowed")
    }
}

final class WebSocketFrameWriterTests: XCTestCase {
    let allocator = ByteBufferAllocator()

    /// Frames appended between two takes come out as one buffer, each with its header in front
    /// of its payload, in order; a payload past the copy limit is handed back, not copied.
    func testFramesBetweenTwoTakesAreOneBuffer() throws {
        var writer = WebSocketFrameWriter()
        XCTAssertNil(writer.append(opcode: .text, payload: ByteBuffer(string: "one"), allocator: allocator))
        XCTAssertNil(
            writer.append(
                opcode: .binary,
                rsv1: true,
                payload: ByteBuffer(repeating: 7, count: 300),
                allocator: allocator
            )
        )
        var bytes = try XCTUnwrap(writer.take())
        XCTAssertNil(writer.take(), "nothing new")
        let parser = WebSocketFrameParser(maxFrameBytes: 1 << 20)
        let first = try XCTUnwrap(try parser.parse(&bytes))
        XCTAssertEqual([first.opcode], [.text])
        XCTAssertEqual(first.payload, ByteBuffer(string: "one"))
        let second = try XCTUnwrap(try parser.parse(&bytes))
        XCTAssertTrue(second.rsv1 && second.fin && second.maskKey == nil)
        XCTAssertEqual(second.payload, ByteBuffer(repeating: 7, count: 300))
        XCTAssertEqual(bytes.readableBytes, 0)

        let large = ByteBuffer(repeating: 1, count: WebSocketFrameWriter.copyLimit + 1)
        XCTAssertEqual(writer.append(opcode: .binary, payload: large, allocator: allocator), large)
        var header = try XCTUnwrap(writer.take())
        XCTAssertEqual(header.readableBytes, 4, "the header alone")
        header.writeImmutableBuffer(large)
        XCTAssertEqual(try parser.parse(&header)?.payload, large)
    }

    /// Once what was taken has been let go (TLS has taken the bytes), the next frames reuse
    /// the same memory; while it is still held, they do not overwrite it.
    func testTheBufferIsReusedOnlyWhenLetGo() throws {
        var writer = WebSocketFrameWriter()
        _ = writer.append(opcode: .text, payload: ByteBuffer(string: "first"), allocator: allocator)
        let held = try XCTUnwrap(writer.take())
        let address = held.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        _ = writer.append(opcode: .text, payload: ByteBuffer(string: "second"), allocator: allocator)
        let next = try XCTUnwrap(writer.take())
        XCTAssertEqual(held.getBytes(at: held.readerIndex + 2, length: 5), Array("first".utf8), "held bytes intact")
        XCTAssertNotEqual(next.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }, address)
        let reused = next.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        _ = consume next
        _ = writer.append(opcode: .text, payload: ByteBuffer(string: "third"), allocator: allocator)
        let third = try XCTUnwrap(writer.take())
        XCTAssertEqual(third.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }, reused, "same memory")
        writer.releaseIdle()
        XCTAssertFalse(writer.hasPending)
    }
}

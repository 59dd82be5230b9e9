import NIOCore
import WorkerProtocol
import XCTest

final class WorkerFrameReaderTests: XCTestCase {
    /// Every sample, encoded back to back, then fed in pieces of every size from 1 byte to the
    /// whole stream: the same frames come out, whatever the cuts.
    func testFramesSurviveAnySplit() throws {
        var stream = ByteBuffer()
        for frame in WorkerFrameCodecTests.samples { WorkerFrameCodec.encode(frame, into: &stream) }
        for piece in [1, 2, 3, 5, 7, 13, 64, stream.readableBytes] {
            var reader = WorkerFrameReader(maxFrameBytes: 1 << 20)
            var frames: [WorkerFrame] = []
            var rest = stream
            while rest.readableBytes > 0 {
                reader.append(rest.readSlice(length: min(piece, rest.readableBytes))!)
                while let frame = try reader.next() { frames.append(frame) }
            }
            XCTAssertEqual(frames, WorkerFrameCodecTests.samples, "pieces of \(piece) bytes")
            XCTAssertEqual(reader.bufferedBytes, 0)
            XCTAssertNoThrow(try reader.finish())
        }
    }

    func testOversizedFrameIsRefusedBeforeItArrives() {
        var reader = WorkerFrameReader(maxFrameBytes: 1024)
        reader.append(ByteBuffer(bytes: [0, 0, 0x10, 0x00, 0x22]))
        XCTAssertThrowsError(try reader.next()) { XCTAssertEqual(($0 as? WorkerProtocolError)?.code, .frameTooLarge) }
    }

    func testLinkEndingMidFrameIsATruncatedFrame() throws {
        var reader = WorkerFrameReader(maxFrameBytes: 1024)
        reader.append(ByteBuffer(bytes: [0, 0, 0, 9, 0x22, 0, 0]))
        XCTAssertNil(try reader.next())
        XCTAssertEqual(reader.bufferedBytes, 7)
        XCTAssertThrowsError(try reader.finish()) {
            XCTAssertEqual(($0 as? WorkerProtocolError)?.code, .truncatedFrame)
        }
    }

    /// A large payload is left out of the buffer and handed back; buffer plus payload are the
    /// frame, byte for byte.
    func testLargePayloadIsSeparatedButTheFrameIsTheSame() throws {
        let big = ByteBuffer(repeating: 0xAB, count: 20_000)
        let frame = WorkerFrame.send(connection: 5, kind: .binary, payload: big)
        var head = ByteBuffer()
        let payload = try XCTUnwrap(WorkerFrameCodec.encodeHead(frame, into: &head, separatingPayloadsFrom: 16_384))
        XCTAssertEqual(payload, big)
        XCTAssertEqual(head.readableBytes, 4 + 1 + 8 + 1)
        head.writeImmutableBuffer(payload)
        XCTAssertEqual(head, WorkerFrameCodec.encode(frame))
        var small = ByteBuffer()
        XCTAssertNil(
            WorkerFrameCodec.encodeHead(
                .publish(topic: "t", kind: .text, payload: ByteBuffer(string: "x")),
                into: &small,
                separatingPayloadsFrom: 16_384
            )
        )
    }
}

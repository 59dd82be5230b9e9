import NIOCore
import NIOEmbedded
import NIOTestUtils
import WorkerProtocol
import XCTest

final class WorkerFrameCodecTests: XCTestCase {
    static let samples: [WorkerFrame] = [
        .hello(.init(maxFrameBytes: 1 << 24, gateway: "gw-1")),
        .helloAck(.init(maxFrameBytes: 1 << 20, initialCredit: 262_144, worker: "chat ✓")),
        .open(
            .init(
                connection: 42,
                resumed: true,
                verdictRequired: true,
                fields: [(":path", "/chat"), (":query", "room=a"), ("origin", "https://x")]
            )
        ),
        .open(.init(connection: 1, fields: [])),
        .open(
            .init(connection: 3, resumed: true, fields: [(":path", "/t")], attachment: ByteBuffer(bytes: [0, 9, 255]))
        ),
        .open(.init(connection: 4, fields: [], attachment: ByteBuffer())),
        .suspend(connection: 42),
        .release(connection: 42),
        .attach(connection: 42, data: ByteBuffer(bytes: [1, 2, 3])),
        .attach(connection: 42, data: ByteBuffer()),
        .identify(connection: 42, user: "alice", add: ["a", "b"], remove: []),
        .identify(connection: 42, user: nil, add: [], remove: ["a"]),
        .identify(connection: 42, user: "", add: [], remove: []),
        .sendTo(target: .user("alice"), kind: .text, payload: ByteBuffer(string: "hi")),
        .sendTo(target: .tag("room"), kind: .binary, payload: ByteBuffer(bytes: [0, 1])),
        .closeTo(target: .user("bob"), code: 4000, reason: "bye"),
        .closeTo(target: .tag("room"), code: 1000, reason: ""),
        .message(connection: 42, kind: .text, payload: ByteBuffer(string: "héllo")),
        .message(connection: .max, kind: .binary, payload: ByteBuffer(bytes: [0, 255, 1])),
        .message(connection: 7, kind: .binary, payload: ByteBuffer()),
        .closed(connection: 42, code: 1001, reason: "going away"),
        .closed(connection: 42, code: 0, reason: ""),
        .accept(connection: 9),
        .reject(connection: 9, status: 403, reason: "no"),
        .send(connection: 42, kind: .text, payload: ByteBuffer(string: "hi")),
        .close(connection: 42, code: 4000, reason: "bye"),
        .subscribe(connection: 42, topic: "chat.lobby"),
        .unsubscribe(connection: 42, topic: "chat.lobby"),
        .publish(topic: "chat.lobby", kind: .text, payload: ByteBuffer(string: "all")),
        .credit(connection: 42, messages: 3, bytes: 1024),
        .resume(connection: 42, since: .init(offset: 17, epoch: "9f2c41d07be3a815"), topic: "chat.lobby"),
        .resume(connection: 42, since: .init(offset: 0, epoch: ""), topic: "t"),
        .record(request: 7, topic: "chat.lobby", kind: .binary, payload: ByteBuffer(bytes: [0, 1])),
        .subscribed(
            .init(
                connection: 42,
                status: .recovered,
                position: .init(offset: 19, epoch: "9f2c41d07be3a815"),
                missed: 2,
                topic: "chat.lobby"
            )
        ),
        .subscribed(
            .init(connection: 1, status: .noHistory, position: .init(offset: 0, epoch: ""), missed: 0, topic: "x")
        ),
        .recorded(request: 7, status: .recorded, position: .init(offset: 20, epoch: "e")),
        .recorded(request: 8, status: .failed, position: .init(offset: 0, epoch: "")),
    ]

    func testRoundTrip() throws {
        for frame in Self.samples {
            var encoded = WorkerFrameCodec.encode(frame)
            let length = try XCTUnwrap(encoded.readInteger(as: UInt32.self))
            XCTAssertEqual(Int(length), encoded.readableBytes)
            XCTAssertEqual(try WorkerFrameCodec.decode(body: encoded), frame)
        }
    }

    /// The worked example of docs/worker-protocol.md, byte for byte.
    func testDocumentedExample() {
        let encoded = WorkerFrameCodec.encode(.send(connection: 42, kind: .text, payload: ByteBuffer(string: "hi")))
        XCTAssertEqual(
            Array(encoded.readableBytesView),
            [
                0x00, 0x00, 0x00, 0x0C,  // length 12
                0x22,  // send
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2A,  // connection 42
                0x01,  // text
                0x68, 0x69,  // "hi"
            ]
        )
    }

    func testDecoderVerifier() throws {
        let pairs = Self.samples.map { (WorkerFrameCodec.encode($0), [$0]) }
        XCTAssertNoThrow(
            try ByteToMessageDecoderVerifier.verifyDecoder(
                inputOutputPairs: pairs,
                decoderFactory: { WorkerFrameDecoder(maxFrameBytes: 1 << 20) }
            )
        )
    }

    func decodeError(_ bytes: [UInt8], max: Int = 1024) -> WorkerProtocolError? {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(WorkerFrameDecoder(maxFrameBytes: max)))
        defer { _ = try? channel.finish() }
        do {
            try channel.writeInbound(ByteBuffer(bytes: bytes))
            _ = try channel.finish()
        } catch let error as WorkerProtocolError {
            return error
        } catch {
            XCTFail("unexpected \(error)")
        }
        return nil
    }

    func testBadFramesAreRefused() {
        // 4096 > 1024, refused before buffering.
        XCTAssertEqual(decodeError([0, 0, 0x10, 0x00, 0x22]).map(\.code), .frameTooLarge)
        XCTAssertEqual(decodeError([0, 0, 0, 1, 0x7F]).map(\.code), .unknownFrameType)
        XCTAssertEqual(decodeError([0, 0, 0, 3, 0x22, 0, 0]).map(\.code), .truncatedFrame)  // connection cut short
        XCTAssertEqual(decodeError([0, 0, 0, 0]).map(\.code), .truncatedFrame)
        XCTAssertEqual(decodeError([0, 0, 0, 10, 0x20, 0, 0, 0, 0, 0, 0, 0, 1, 9]).map(\.code), .trailingBytes)
        // Kind 3.
        XCTAssertEqual(decodeError([0, 0, 0, 10, 0x22, 0, 0, 0, 0, 0, 0, 0, 1, 3]).map(\.code), .invalidValue)
        XCTAssertEqual(
            decodeError([0, 0, 0, 12, 0x21, 0, 0, 0, 0, 0, 0, 0, 1, 0, 200, 0x41]).map(\.code),
            .invalidValue
        )  // status 200
        // Topic not UTF-8.
        XCTAssertEqual(decodeError([0, 0, 0, 10, 0x24, 0, 0, 0, 0, 0, 0, 0, 1, 0xFF]).map(\.code), .invalidValue)
        XCTAssertEqual(decodeError([0, 0, 0, 9, 0x22, 0, 0, 0]).map(\.code), .truncatedFrame)  // link closed mid-frame
        // A resume without a topic; a subscribed or recorded status out of range.
        XCTAssertEqual(decodeError([0, 0, 0, 19, 0x28] + [UInt8](repeating: 0, count: 18)).map(\.code), .invalidValue)
        XCTAssertEqual(
            decodeError([0, 0, 0, 24, 0x13] + [UInt8](repeating: 0, count: 8) + [9] + [UInt8](repeating: 0, count: 14))
                .map(
                    \.code
                ),
            .invalidValue
        )
        XCTAssertEqual(
            decodeError([0, 0, 0, 16, 0x14, 0, 0, 0, 1, 0] + [UInt8](repeating: 0, count: 10)).map(\.code),
            .invalidValue
        )
        XCTAssertEqual(decodeError(Array("GET / HTTP/1.1\r\n\r\n".utf8)).map(\.code), .frameTooLarge)  // garbage
        // A send-to whose target is neither a user (1) nor a tag (2), or has no name.
        XCTAssertEqual(decodeError([0, 0, 0, 6, 0x2D, 3, 0, 1, 0x61, 1]).map(\.code), .invalidValue)
        XCTAssertEqual(decodeError([0, 0, 0, 5, 0x2D, 1, 0, 0, 1]).map(\.code), .invalidValue)
        // An identify cut inside its tag list.
        XCTAssertEqual(
            decodeError([0, 0, 0, 14, 0x2C, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 2]).map(\.code),
            .truncatedFrame
        )
        // Found by the worker-frames fuzz target: an open with reserved flag bits set was read
        // as if they were clear (and re-encoded to other bytes).
        XCTAssertEqual(
            decodeError([0, 0, 0, 12, 0x10, 0, 0, 0, 0, 0, 0, 0, 57, 0b0011_1001, 0, 0]).map(\.code),
            .invalidValue
        )
        XCTAssertNil(decodeError([0, 0, 0, 12, 0x10, 0, 0, 0, 0, 0, 0, 0, 57, 0b11, 0, 0]))
    }
}

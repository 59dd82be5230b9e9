import GatewayWebSocket
import NIOCore
import XCTest

@testable import GatewayHTTPBackend

final class HTTPBackendCommandsTests: XCTestCase {
    private func json(_ text: String) throws -> [HTTPBackendCommand] {
        try HTTPBackendCommands.decode(contentType: "application/json; charset=utf-8", body: ByteBuffer(string: text))
    }

    func testJSONCommands() throws {
        let commands = try json(
            """
            [{"op": "send", "text": "hi"},
             {"op": "send", "user": "alice", "binary": "AAE="},
             {"op": "send", "connection": 42, "text": "x"},
             {"op": "close", "tag": "room", "code": 4000, "reason": "bye"},
             {"op": "subscribe", "topic": "news.*"},
             {"op": "unsubscribe", "topic": "news.*"},
             {"op": "publish", "topic": "chat", "text": "hello"},
             {"op": "identify", "user": "bob", "tags": ["a"], "remove": ["b"]},
             {"op": "identify", "user": null}]
            """
        )
        XCTAssertEqual(
            commands,
            [
                .send(.this, kind: .text, data: ByteBuffer(string: "hi")),
                .send(.user("alice"), kind: .binary, data: ByteBuffer(bytes: [0, 1])),
                .send(.connection(42), kind: .text, data: ByteBuffer(string: "x")),
                .close(.tag("room"), code: 4000, reason: "bye"),
                .subscribe("news.*"),
                .unsubscribe("news.*"),
                .publish(topic: "chat", kind: .text, data: ByteBuffer(string: "hello")),
                .identify(user: .some("bob"), add: ["a"], remove: ["b"]),
                .identify(user: .some(nil), add: [], remove: []),
            ]
        )
        XCTAssertEqual(try json(#"{"commands": [{"op": "subscribe", "topic": "t"}]}"#), [.subscribe("t")])
    }

    func testEveryBadJSONCommandIsNamed() {
        let cases: [(String, HTTPBackendCommandError.Code)] = [
            (#"[{"op": "fly"}]"#, .unknownCommand),
            (#"[{"op": "send"}]"#, .invalidValue),
            (#"[{"op": "send", "text": "a", "binary": "AA=="}]"#, .invalidValue),
            (#"[{"op": "send", "user": "a", "tag": "b", "text": "x"}]"#, .invalidValue),
            (#"[{"op": "send", "binary": "not base64!"}]"#, .invalidValue),
            (#"[{"op": "close", "code": 1005}]"#, .invalidValue),
            (#"[{"op": "subscribe", "topic": "$user:alice"}]"#, .invalidValue),
            (#"[{"op": "publish", "topic": "news.*", "text": "x"}]"#, .invalidValue),
            (#"[{"op": "identify"}]"#, .invalidValue),
            (#"[{"op": "identify", "user": ""}]"#, .invalidValue),
            (#"[{"op": "identify", "tags": ["a\u0001"]}]"#, .invalidValue),
            ("[{", .malformed),
            (#"{"nope": 1}"#, .malformed),
        ]
        for (text, code) in cases {
            XCTAssertThrowsError(try json(text), text) { error in
                XCTAssertEqual((error as? HTTPBackendCommandError)?.code, code, text)
            }
        }
    }

    func testPlainAnswersAreOneMessageToTheConnection() throws {
        XCTAssertEqual(
            try HTTPBackendCommands.decode(contentType: "text/plain", body: ByteBuffer(string: "hey")),
            [.send(.this, kind: .text, data: ByteBuffer(string: "hey"))]
        )
        XCTAssertEqual(
            try HTTPBackendCommands.decode(contentType: "application/octet-stream", body: ByteBuffer(bytes: [9])),
            [.send(.this, kind: .binary, data: ByteBuffer(bytes: [9]))]
        )
        XCTAssertEqual(try HTTPBackendCommands.decode(contentType: "application/json", body: ByteBuffer()), [])
        XCTAssertThrowsError(try HTTPBackendCommands.decode(contentType: "text/plain", body: ByteBuffer(bytes: [0xFF])))
        XCTAssertThrowsError(try HTTPBackendCommands.decode(contentType: "image/png", body: ByteBuffer(bytes: [1])))
    }

    func testTheBinaryFormRoundTripsEveryCommand() throws {
        var body = ByteBuffer()
        func string(_ value: String) {
            body.writeInteger(UInt16(value.utf8.count))
            body.writeString(value)
        }
        func payload(_ type: UInt8, _ value: String) {
            body.writeInteger(type)
            body.writeInteger(UInt32(value.utf8.count))
            body.writeString(value)
        }
        body.writeInteger(UInt8(0x01))
        body.writeInteger(UInt8(0))
        payload(1, "hi")
        body.writeInteger(UInt8(0x01))
        body.writeInteger(UInt8(1))
        body.writeInteger(UInt64(7))
        payload(2, "b")
        body.writeInteger(UInt8(0x02))
        body.writeInteger(UInt8(2))
        string("alice")
        body.writeInteger(UInt16(4001))
        string("gone")
        body.writeInteger(UInt8(0x03))
        string("chat")
        body.writeInteger(UInt8(0x04))
        string("chat")
        body.writeInteger(UInt8(0x05))
        string("chat")
        payload(1, "p")
        body.writeInteger(UInt8(0x06))
        string("bob")
        body.writeInteger(UInt8(0x07))
        string("t1")
        body.writeInteger(UInt8(0x08))
        string("t2")
        body.writeInteger(UInt8(0x02))
        body.writeInteger(UInt8(3))
        string("t1")
        body.writeInteger(UInt16(1000))
        string("")
        let commands = try HTTPBackendCommands.decode(contentType: HTTPBackendCommands.binaryType, body: body)
        XCTAssertEqual(
            commands,
            [
                .send(.this, kind: .text, data: ByteBuffer(string: "hi")),
                .send(.connection(7), kind: .binary, data: ByteBuffer(string: "b")),
                .close(.user("alice"), code: 4001, reason: "gone"),
                .subscribe("chat"),
                .unsubscribe("chat"),
                .publish(topic: "chat", kind: .text, data: ByteBuffer(string: "p")),
                .identify(user: .some("bob"), add: [], remove: []),
                .identify(user: nil, add: ["t1"], remove: []),
                .identify(user: nil, add: [], remove: ["t2"]),
                .close(.tag("t1"), code: 1000, reason: ""),
            ]
        )
        // Every cut of it is refused as cut short or invalid, never taken in part.
        for length in 1..<body.readableBytes {
            let cut = body.getSlice(at: 0, length: length)!
            if let decoded = try? HTTPBackendCommands.decode(contentType: HTTPBackendCommands.binaryType, body: cut) {
                XCTAssertTrue(commands.starts(with: decoded) && decoded.count < commands.count, "cut at \(length)")
                // A cut that falls between two records is a shorter, whole list.
            }
        }
        XCTAssertThrowsError(
            try HTTPBackendCommands.decode(contentType: HTTPBackendCommands.binaryType, body: ByteBuffer(bytes: [0x09]))
        )
    }
}

import NIOCore
import RedisClient
import XCTest

/// The decoder on its own: every RESP3 type, replies split anywhere, and each bound crossed.
final class RESPDecoderTests: XCTestCase {
    private func decodeAll(_ text: String, limits: RESPDecoder.Limits = .init()) throws -> [RESPValue] {
        var decoder = RESPDecoder(limits: limits)
        var buffer = ByteBuffer(string: text)
        var values: [RESPValue] = []
        while let value = try decoder.decode(buffer: &buffer) { values.append(value) }
        XCTAssertEqual(buffer.readableBytes, 0, "bytes left over")
        return values
    }

    func testEveryType() throws {
        let values = try decodeAll(
            "+OK\r\n-ERR no\r\n:-7\r\n$3\r\nabc\r\n$-1\r\n*2\r\n:1\r\n$0\r\n\r\n_\r\n,1.25\r\n#t\r\n(123456789012345678901\r\n%1\r\n+k\r\n:2\r\n~1\r\n+m\r\n>2\r\n+message\r\n$1\r\nx\r\n=7\r\ntxt:abc\r\n|1\r\n+ttl\r\n:3\r\n+annotated\r\n"
        )
        XCTAssertEqual(
            values,
            [
                .simpleString("OK"), .error(RedisError(.server, "ERR no")), .integer(-7),
                .bulkString(ByteBuffer(string: "abc")),
                .bulkString(nil), .array([.integer(1), .bulkString(ByteBuffer())]), .null, .double(1.25),
                .boolean(true),
                .bigNumber("123456789012345678901"), .map([(.simpleString("k"), .integer(2))]),
                .set([.simpleString("m")]),
                .push([.simpleString("message"), .bulkString(ByteBuffer(string: "x"))]),
                .bulkString(ByteBuffer(string: "abc")),
                .simpleString("annotated"),
            ]
        )
    }

    func testAReplySplitAtEveryByteWaitsForTheRest() throws {
        let wire = Array("*3\r\n$5\r\nhello\r\n:42\r\n%1\r\n+a\r\n#f\r\n".utf8)
        for split in 1..<wire.count {
            var decoder = RESPDecoder()
            var buffer = ByteBuffer(bytes: wire[..<split])
            XCTAssertNil(try decoder.decode(buffer: &buffer), "split at \(split)")
            buffer.writeBytes(wire[split...])
            XCTAssertEqual(
                try decoder.decode(buffer: &buffer),
                .array([
                    .bulkString(ByteBuffer(string: "hello")), .integer(42),
                    .map([(.simpleString("a"), .boolean(false))]),
                ])
            )
        }
    }

    func testBoundsAreEnforcedBeforeBuffering() {
        let limits = RESPDecoder.Limits(maxBulkBytes: 8, maxElements: 4, maxDepth: 2, maxLineBytes: 16)
        XCTAssertThrowsError(try decodeAll("$9\r\n", limits: limits)) {
            XCTAssertEqual(($0 as? RedisError)?.code, .protocolViolation)
        }
        XCTAssertThrowsError(try decodeAll("*5\r\n", limits: limits)) {
            XCTAssertEqual(($0 as? RedisError)?.code, .protocolViolation)
        }
        XCTAssertThrowsError(try decodeAll("*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", limits: limits)) {
            XCTAssertEqual(($0 as? RedisError)?.code, .protocolViolation)
        }
        // Attributes count as levels: a chain of them recursed once per attribute, unbounded.
        XCTAssertThrowsError(try decodeAll(String(repeating: "|0\r\n", count: 3) + ":1\r\n", limits: limits)) {
            XCTAssertEqual(($0 as? RedisError)?.code, .protocolViolation)
        }
        XCTAssertThrowsError(try decodeAll(String(repeating: "|0\r\n", count: 100_000) + ":1\r\n")) {
            XCTAssertEqual(($0 as? RedisError)?.code, .protocolViolation)
        }
        XCTAssertEqual(try decodeAll("|1\r\n+ttl\r\n:3\r\n:1\r\n", limits: limits), [.integer(1)])
        XCTAssertThrowsError(try decodeAll("+" + String(repeating: "a", count: 40), limits: limits)) {
            XCTAssertEqual(($0 as? RedisError)?.code, .protocolViolation)
        }
        XCTAssertThrowsError(try decodeAll("?\r\n")) { XCTAssertEqual(($0 as? RedisError)?.code, .protocolViolation) }
        XCTAssertThrowsError(try decodeAll(":abc\r\n")) {
            XCTAssertEqual(($0 as? RedisError)?.code, .protocolViolation)
        }
        XCTAssertThrowsError(try decodeAll("$3\r\nabcXY")) {
            XCTAssertEqual(($0 as? RedisError)?.code, .protocolViolation)
        }
    }

    func testCommandsAreArraysOfBulkStrings() {
        var out = ByteBuffer()
        RESPCommandEncoder.encode(
            [ByteBuffer(string: "SET"), ByteBuffer(string: "k"), ByteBuffer(bytes: [0, 13, 10])],
            into: &out
        )
        XCTAssertEqual(String(buffer: out), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n\u{0}\r\n\r\n")
    }
}

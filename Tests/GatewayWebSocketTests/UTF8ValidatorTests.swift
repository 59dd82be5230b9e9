import GatewayCore
import GatewayWebSocket
import NIOCore
import NIOWebSocket
import XCTest

final class UTF8ValidatorTests: XCTestCase {
    func testValidText() {
        for text in ["", "hello", "κόσμε", "€ 𝄞 😀", String(repeating: "ascii only ", count: 20) + "é"] {
            XCTAssertTrue(UTF8Validator.isValid(ByteBuffer(string: text)), text)
        }
    }

    func testInvalidSequences() {
        let invalid: [[UInt8]] = [
            [0xC0, 0x80],  // overlong NUL
            [0xE0, 0x80, 0x80],  // overlong 3-byte
            [0xED, 0xA0, 0x80],  // UTF-16 surrogate
            [0xF4, 0x90, 0x80, 0x80],  // above U+10FFFF
            [0xF8, 0x88, 0x80, 0x80, 0x80],  // 5-byte form
            [0x80],  // lone continuation
            [0xCE],  // truncated
            Array("ok so far".utf8) + [0xFF],
        ]
        for bytes in invalid {
            XCTAssertFalse(UTF8Validator.isValid(ByteBuffer(bytes: bytes)), "\(bytes)")
        }
    }

    /// A code point split at any position across fragments is still valid, and an invalid byte
    /// is caught in the fragment where it appears.
    func testIncrementalAcrossEverySplit() {
        let bytes = Array("aκό€𝄞z".utf8)
        for split in 0...bytes.count {
            var validator = UTF8Validator()
            XCTAssertTrue(validator.validate(ByteBuffer(bytes: bytes[..<split])))
            XCTAssertTrue(validator.validate(ByteBuffer(bytes: bytes[split...])))
            XCTAssertTrue(validator.isAtBoundary)
        }
        var validator = UTF8Validator()
        XCTAssertTrue(validator.validate(ByteBuffer(bytes: [0xF0, 0x9D])))
        XCTAssertFalse(validator.isAtBoundary)
        XCTAssertFalse(validator.validate(ByteBuffer(bytes: [0x41])))
    }
}

final class HandshakeTests: XCTestCase {
    func testAcceptValueFromRFC6455() {
        XCTAssertEqual(
            WebSocketHandshake.acceptValue(forKey: "dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        )
    }

    func testKeyValidation() {
        XCTAssertTrue(WebSocketHandshake.isValidKey("dGhlIHNhbXBsZSBub25jZQ=="))
        XCTAssertFalse(WebSocketHandshake.isValidKey("short"))
        XCTAssertFalse(WebSocketHandshake.isValidKey("dGhlIHNhbXBsZSBub25jZQ"))
        XCTAssertFalse(WebSocketHandshake.isValidKey("dGhlIHNhbXBsZSBub25jZSEh"))  // 18 bytes
    }

    func testCloseCodes() {
        for code: UInt16 in [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999] {
            XCTAssertTrue(WebSocketErrorCode.isValidOnWire(code), "\(code)")
        }
        for code: UInt16 in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            XCTAssertFalse(WebSocketErrorCode.isValidOnWire(code), "\(code)")
        }
    }
}

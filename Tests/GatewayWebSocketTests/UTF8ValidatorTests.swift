import GatewayCore
import GatewayWebSocket
import NIOCore
import NIOWebSocket
import SessionTestSupport
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

    /// Every two-byte sequence with a high first byte, at every position of a 40-byte ASCII
    /// text (so across the 32-byte and 8-byte word boundaries of the fast paths), gets the
    /// standard library's verdict.
    func testEveryTwoBytePairAtEveryOffsetAgreesWithTheStandardLibrary() {
        for offset in [0, 6, 7, 8, 15, 30, 31, 32, 38] {
            for first in 0x80...0xFF {
                for second in 0x00...0xFF {
                    var bytes = [UInt8](repeating: 0x61, count: 40)
                    bytes[offset] = UInt8(first)
                    bytes[offset + 1] = UInt8(second)
                    let expected = String(validating: bytes, as: UTF8.self) != nil
                    XCTAssertEqual(
                        UTF8Validator.isValid(ByteBuffer(bytes: bytes)),
                        expected,
                        "\(offset): \(first) \(second)"
                    )
                }
            }
        }
    }

    /// Generated text of every kind (ASCII runs, two-, three- and four-byte sequences, stray
    /// bytes), cut into up to three fragments at random points: the validator agrees with the
    /// standard library on all of it. Seeded, so a failure is reproducible.
    func testGeneratedTextInFragmentsAgreesWithTheStandardLibrary() {
        var random = SplitMix64(seed: 6455)
        let pieces: [[UInt8]] = [
            Array("plain ascii text".utf8), Array("é".utf8), Array("ö".utf8), Array("Жж".utf8),
            Array("€".utf8), Array("日本".utf8), Array("😀".utf8), Array("\u{10FFFF}".utf8),
        ]
        for round in 0..<20_000 {
            var bytes: [UInt8] = []
            for _ in 0..<Int(random.next() % 12) {
                if random.next() % 8 == 0 {
                    bytes.append(UInt8(truncatingIfNeeded: random.next()))
                } else {
                    bytes += pieces[Int(random.next() % UInt64(pieces.count))]
                }
            }
            let expected = String(validating: bytes, as: UTF8.self) != nil
            let first = bytes.isEmpty ? 0 : Int(random.next() % UInt64(bytes.count + 1))
            let second = first + (bytes.count == first ? 0 : Int(random.next() % UInt64(bytes.count - first + 1)))
            var validator = UTF8Validator()
            let valid =
                validator.validate(ByteBuffer(bytes: bytes[..<first]))
                && validator.validate(ByteBuffer(bytes: bytes[first..<second]))
                && validator.validate(ByteBuffer(bytes: bytes[second...])) && validator.isAtBoundary
            XCTAssertEqual(valid, expected, "round \(round): \(bytes) cut at \(first), \(second)")
        }
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

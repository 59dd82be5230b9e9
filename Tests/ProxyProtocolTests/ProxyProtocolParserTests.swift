import XCTest

@testable import ProxyProtocol

/// The PROXY protocol header as haproxy.org's proxy-protocol.txt writes it, and every way of
/// getting it wrong that the parser must refuse.
final class ProxyProtocolParserTests: XCTestCase {
    private func parse(_ text: String) throws -> ProxyProtocolParser.Outcome {
        try ProxyProtocolParser.parse(Array(text.utf8))
    }

    private func refusal(_ bytes: [UInt8]) -> ProxyProtocolError.Code? {
        do {
            _ = try ProxyProtocolParser.parse(bytes)
            return nil
        } catch {
            return error.code
        }
    }

    func testVersion1LinesForBothFamiliesAndUnknown() throws {
        let line = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\nGET / HTTP/1.1\r\n"
        guard case .header(let header) = try parse(line) else { return XCTFail() }
        XCTAssertEqual(header.version, 1)
        XCTAssertEqual(header.source, .init(address: [192, 0, 2, 7], port: 56324))
        XCTAssertEqual(header.destination, .init(address: [198, 51, 100, 1], port: 443))
        XCTAssertEqual(header.length, line.utf8.count - "GET / HTTP/1.1\r\n".utf8.count)

        guard case .header(let v6) = try parse("PROXY TCP6 2001:db8::7 2001:db8::1 0 65535\r\n") else {
            return XCTFail()
        }
        XCTAssertEqual(v6.source?.address, [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [7])
        XCTAssertEqual(v6.source?.port, 0)
        XCTAssertEqual(v6.destination?.port, 65535)

        guard case .header(let unknown) = try parse("PROXY UNKNOWN anything at all\r\n") else { return XCTFail() }
        XCTAssertNil(unknown.source)
    }

    func testPartialHeadersAskForMoreAndOtherProtocolsAreNotHeaders() throws {
        for prefix in ["", "P", "PROXY", "PROXY TCP4 1.2.3.4", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r"] {
            XCTAssertEqual(try parse(prefix), .needMore, prefix)
        }
        XCTAssertEqual(try ProxyProtocolParser.parse(Array(ProxyProtocolParser.v2Signature.prefix(7))), .needMore)
        for other in ["GET / HTTP/1.1\r\n", "POST /", "PUT", "\u{16}\u{03}\u{01}"] {
            XCTAssertEqual(try parse(other), .notAHeader, other)
        }
    }

    func testMalformedVersion1LinesAreRefused() {
        let bad = [
            "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",  // LF without CR
            "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",  // five fields
            "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",  // two spaces
            "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",  // leading zero
            "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
            "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
            "PROXY TCP4 ::1 5.6.7.8 1 2\r\n",  // v6 address for TCP4
            "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",  // v4 address for TCP6
            "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
            "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
            "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
            "PROXY TCP4 1.2.3.4\u{7f} 5.6.7.8 1 2\r\n",
        ]
        for line in bad {
            XCTAssertEqual(refusal(Array(line.utf8)), .malformedV1, line)
        }
        let long = "PROXY UNKNOWN " + String(repeating: "x", count: 100)
        XCTAssertEqual(refusal(Array(long.utf8)), .lineTooLong)
        // CRLF ending exactly at byte 107 is the longest line allowed; one more is too long.
        let longest = "PROXY UNKNOWN " + String(repeating: "x", count: 107 - 16) + "\r\n"
        XCTAssertEqual(longest.utf8.count, 107)
        XCTAssertNotNil(try? parse(longest))
        XCTAssertEqual(
            refusal(Array(("PROXY UNKNOWN x" + String(repeating: "x", count: 91) + "\r\n").utf8)),
            .lineTooLong
        )
    }

    /// A v2 header: signature, version/command, family/transport, length, then `body`.
    private func v2(command: UInt8 = 1, family: UInt8 = 0x11, body: [UInt8]) -> [UInt8] {
        ProxyProtocolParser.v2Signature + [0x20 | command, family, UInt8(body.count >> 8), UInt8(body.count & 0xFF)]
            + body
    }

    private let inet: [UInt8] = [10, 0, 0, 9, 10, 0, 0, 1, 0xC3, 0x50, 0x01, 0xBB]

    func testVersion2ForIPv4IPv6LocalAndTLVs() throws {
        let authority: [UInt8] = [0x02, 0x00, 0x0B] + Array("example.org".utf8)
        let bytes = v2(body: inet + authority) + Array("after".utf8)
        guard case .header(let header) = try ProxyProtocolParser.parse(bytes) else { return XCTFail() }
        XCTAssertEqual(header.source, .init(address: [10, 0, 0, 9], port: 50000))
        XCTAssertEqual(header.destination, .init(address: [10, 0, 0, 1], port: 443))
        XCTAssertEqual(header.authority, "example.org")
        XCTAssertEqual(header.length, bytes.count - 5)

        let six =
            Array(repeating: UInt8(0), count: 15) + [1] + Array(repeating: UInt8(0), count: 15) + [2] + [0, 80, 0, 81]
        guard case .header(let v6) = try ProxyProtocolParser.parse(v2(family: 0x21, body: six)) else {
            return XCTFail()
        }
        XCTAssertEqual(v6.source?.address.last, 1)
        XCTAssertEqual(v6.source?.port, 80)

        // LOCAL (a health check): no client named, the body ignored.
        guard case .header(let local) = try ProxyProtocolParser.parse(v2(command: 0, family: 0x00, body: [1, 2, 3]))
        else { return XCTFail() }
        XCTAssertNil(local.source)
        // A Unix source: no address the gateway can use.
        guard
            case .header(let unix) = try ProxyProtocolParser.parse(
                v2(family: 0x31, body: Array(repeating: 0, count: 216))
            )
        else { return XCTFail() }
        XCTAssertNil(unix.source)
        // Incomplete: more is needed.
        XCTAssertEqual(try ProxyProtocolParser.parse(Array(v2(body: inet).dropLast())), .needMore)
    }

    func testVersion2WithAMatchingCRC32CAndAnSSLTLV() throws {
        let ssl: [UInt8] = [0x20, 0x00, 0x0A, 0x01, 0, 0, 0, 0, 0x21, 0x00, 0x02] + Array("v3".utf8)
        var bytes = v2(body: inet + ssl + [0x03, 0x00, 0x04, 0, 0, 0, 0])
        let crc = CRC32C.checksum(bytes)
        bytes.replaceSubrange(
            (bytes.count - 4)...,
            with: [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)]
        )
        guard case .header(let header) = try ProxyProtocolParser.parse(bytes) else { return XCTFail() }
        XCTAssertEqual(header.tlvs.map(\.type), [0x20, 0x03])
        bytes[16] ^= 1  // the source address changed in transit
        XCTAssertEqual(refusal(bytes), .checksum)
    }

    func testCRC32CIsCastagnoli() {
        // RFC 3720 B.4's check value.
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
    }

    func testMalformedVersion2HeadersAreRefused() {
        var wrongVersion = v2(body: inet)
        wrongVersion[12] = 0x11
        XCTAssertEqual(refusal(wrongVersion), .unsupported)
        XCTAssertEqual(refusal(v2(command: 2, body: inet)), .unsupported)
        XCTAssertEqual(refusal(v2(family: 0x41, body: inet)), .unsupported)
        XCTAssertEqual(refusal(v2(family: 0x12, body: inet)), .datagram)
        XCTAssertEqual(refusal(v2(family: 0x10, body: inet)), .unsupported)
        XCTAssertEqual(refusal(v2(body: Array(inet.prefix(11)))), .malformedV2)
        XCTAssertEqual(refusal(v2(family: 0x21, body: inet)), .malformedV2)
        XCTAssertEqual(refusal(v2(body: inet + [0x04, 0x00])), .malformedV2, "a stray TLV start")
        XCTAssertEqual(refusal(v2(body: inet + [0x04, 0x00, 0x05, 1])), .malformedV2, "a TLV past the end")
        XCTAssertEqual(refusal(v2(body: inet + [0x03, 0x00, 0x02, 1, 2])), .malformedV2, "a short CRC")
        XCTAssertEqual(refusal(v2(body: inet + [0x05, 0x00, 0x81] + Array(repeating: 1, count: 129))), .malformedV2)
        XCTAssertEqual(
            refusal(v2(body: inet + [0x02, 0x00, 0x01, 0x0A])),
            .malformedV2,
            "an authority with a line break"
        )
        XCTAssertEqual(refusal(v2(body: inet + [0x20, 0x00, 0x03, 1, 0, 0])), .malformedV2, "a short SSL TLV")
        XCTAssertEqual(refusal(v2(body: inet + [0x20, 0x00, 0x07, 1, 0, 0, 0, 0, 0x21, 0x00])), .malformedV2)
        XCTAssertEqual(refusal(v2(body: Array(repeating: 0, count: 4097))), .tooLong)
        // The length alone decides: a header announcing too much is refused before it arrives.
        XCTAssertEqual(refusal(ProxyProtocolParser.v2Signature + [0x21, 0x11, 0xFF, 0xFF]), .tooLong)
    }
}

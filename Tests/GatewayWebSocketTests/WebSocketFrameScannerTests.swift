import GatewayWebSocket
import NIOCore
import XCTest

final class WebSocketFrameScannerTests: XCTestCase {
    /// A frame's bytes: `masked` as a client sends it.
    func frame(opcode: UInt8, length: Int, masked: Bool, fin: Bool = true) -> [UInt8] {
        var bytes: [UInt8] = [(fin ? 0x80 : 0) | opcode]
        let maskBit: UInt8 = masked ? 0x80 : 0
        switch length {
        case 0...125: bytes.append(maskBit | UInt8(length))
        case 126...0xFFFF: bytes += [maskBit | 126, UInt8(length >> 8), UInt8(length & 0xFF)]
        default:
            bytes += [maskBit | 127] + (0..<8).reversed().map { UInt8((UInt64(length) >> (8 * UInt64($0))) & 0xFF) }
        }
        if masked { bytes += [1, 2, 3, 4] }
        return bytes + [UInt8](repeating: 0x61, count: length)
    }

    func scan(_ bytes: [UInt8], into scanner: inout WebSocketFrameScanner, untilBoundary: Bool = false) -> Int {
        bytes.withUnsafeBytes { scanner.scan($0, untilBoundary: untilBoundary) }
    }

    func testBoundariesOfEveryLengthFormWholeAndByteByByte() {
        let frames = [
            frame(opcode: 1, length: 0, masked: true), frame(opcode: 2, length: 125, masked: false),
            frame(opcode: 1, length: 126, masked: true), frame(opcode: 0, length: 70_000, masked: false, fin: false),
            frame(opcode: 9, length: 4, masked: true), frame(opcode: 8, length: 2, masked: false),
        ]
        var whole = WebSocketFrameScanner()
        for bytes in frames {
            XCTAssertEqual(scan(bytes, into: &whole), bytes.count)
            XCTAssertTrue(whole.atBoundary)
        }
        XCTAssertEqual(whole.closeFrames, 1)

        var bitwise = WebSocketFrameScanner()
        for bytes in frames {
            for (index, byte) in bytes.enumerated() {
                _ = scan([byte], into: &bitwise)
                XCTAssertEqual(bitwise.atBoundary, index == bytes.count - 1, "byte \(index) of \(bytes.count)")
            }
        }
        XCTAssertEqual(bitwise.closeFrames, 1)
    }

    func testUntilBoundaryStopsWhereTheFrameInFlightEnds() {
        let first = frame(opcode: 1, length: 300, masked: true)
        let second = frame(opcode: 1, length: 10, masked: true)
        var scanner = WebSocketFrameScanner()
        XCTAssertEqual(scan(Array(first[0..<100]), into: &scanner), 100)
        XCTAssertFalse(scanner.atBoundary)
        // The rest of the first frame and all of the second arrive together: the boundary is
        // after the first.
        let rest = Array(first[100...]) + second
        XCTAssertEqual(scan(rest, into: &scanner, untilBoundary: true), first.count - 100)
        XCTAssertTrue(scanner.atBoundary)
        // At a boundary already: nothing lies before it.
        XCTAssertEqual(scan(second, into: &scanner, untilBoundary: true), 0)
    }

    func testALengthWithItsTopBitSetBreaksTheScanner() {
        var scanner = WebSocketFrameScanner()
        _ = scan([0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1], into: &scanner)
        XCTAssertTrue(scanner.isBroken)
        XCTAssertFalse(scanner.atBoundary)
    }
}

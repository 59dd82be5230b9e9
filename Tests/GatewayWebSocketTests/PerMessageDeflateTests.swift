import CompressNIO
import GatewayCore
import NIOCore
import XCTest

@testable import GatewayWebSocket

final class PerMessageDeflateNegotiationTests: XCTestCase {
    let takeover = CompressionSettings(serverNoContextTakeover: false, clientNoContextTakeover: false)

    func testPlainOfferWithTakeoverAllowed() throws {
        let parameters = try XCTUnwrap(
            PerMessageDeflateNegotiation.negotiate(headerValues: ["permessage-deflate"], settings: takeover)
        )
        XCTAssertEqual(parameters.responseHeader, "permessage-deflate")
        XCTAssertFalse(parameters.serverNoContextTakeover)
    }

    func testDefaultsAskForNoContextTakeover() throws {
        let parameters = try XCTUnwrap(
            PerMessageDeflateNegotiation.negotiate(
                headerValues: ["permessage-deflate; client_max_window_bits"],
                settings: .init()
            )
        )
        XCTAssertEqual(
            parameters.responseHeader,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        )
        XCTAssertTrue(parameters.serverNoContextTakeover && parameters.clientNoContextTakeover)
    }

    func testWindowBits() throws {
        let parameters = try XCTUnwrap(
            PerMessageDeflateNegotiation.negotiate(
                headerValues: ["permessage-deflate; server_max_window_bits=10; client_max_window_bits=\"12\""],
                settings: takeover
            )
        )
        XCTAssertEqual(parameters.serverMaxWindowBits, 10)
        XCTAssertEqual(parameters.clientMaxWindowBits, 12)
        XCTAssertEqual(
            parameters.responseHeader,
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits=12"
        )
    }

    func testInvalidOffersAreDeclinedAndTheNextOneTaken() throws {
        for bad in [
            "permessage-deflate; server_max_window_bits", "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=09", "permessage-deflate; unknown",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1", "permessage-deflate; server_max_window_bits=8",
        ] {
            XCTAssertNil(PerMessageDeflateNegotiation.negotiate(headerValues: [bad], settings: takeover), bad)
        }
        let parameters = try XCTUnwrap(
            PerMessageDeflateNegotiation.negotiate(
                headerValues: [
                    "x-webkit-deflate-frame, permessage-deflate; bogus",
                    "permessage-deflate; client_no_context_takeover",
                ],
                settings: takeover
            )
        )
        XCTAssertEqual(parameters.responseHeader, "permessage-deflate; client_no_context_takeover")
    }

    func testDisabled() {
        XCTAssertNil(
            PerMessageDeflateNegotiation.negotiate(
                headerValues: ["permessage-deflate"],
                settings: .init(enabled: false)
            )
        )
    }
}

final class PerMessageDeflateTests: XCTestCase {
    func parameters(takeover: Bool) -> PerMessageDeflateParameters {
        PerMessageDeflateNegotiation.negotiate(
            headerValues: ["permessage-deflate"],
            settings: CompressionSettings(serverNoContextTakeover: !takeover, clientNoContextTakeover: !takeover)
        )!
    }

    func testRoundTripOverSeveralMessagesWithContextTakeover() throws {
        let sender = PerMessageDeflate(parameters: parameters(takeover: true))
        let receiver = PerMessageDeflate(parameters: parameters(takeover: true))
        var sizes: [Int] = []
        for index in 0..<5 {
            let message = ByteBuffer(string: String(repeating: "the same words again \(index % 2) ", count: 40))
            let compressed = try sender.compress(message, allocator: .init())
            sizes.append(compressed.readableBytes)
            var output = ByteBuffer()
            try receiver.decompress(compressed, final: true, into: &output, limit: 1 << 20)
            XCTAssertEqual(output, message)
        }
        XCTAssertLessThan(sizes[2], sizes[0])  // the shared window pays off
    }

    func testFragmentedCompressedMessage() throws {
        let sender = PerMessageDeflate(parameters: parameters(takeover: false))
        let receiver = PerMessageDeflate(parameters: parameters(takeover: false))
        let message = ByteBuffer(bytes: (0..<100_000).map { UInt8(truncatingIfNeeded: $0 * 7 % 251) })
        var compressed = try sender.compress(message, allocator: .init())
        var output = ByteBuffer()
        while compressed.readableBytes > 1000 {
            try receiver.decompress(compressed.readSlice(length: 1000)!, final: false, into: &output, limit: 1 << 20)
        }
        try receiver.decompress(compressed, final: true, into: &output, limit: 1 << 20)
        XCTAssertEqual(output, message)
    }

    func testLimitStopsABomb() throws {
        let sender = PerMessageDeflate(parameters: parameters(takeover: false))
        let receiver = PerMessageDeflate(parameters: parameters(takeover: false))
        let compressed = try sender.compress(ByteBuffer(repeating: 0, count: 10_000_000), allocator: .init())
        XCTAssertLessThan(compressed.readableBytes, 20_000)
        var output = ByteBuffer()
        XCTAssertThrowsError(try receiver.decompress(compressed, final: true, into: &output, limit: 65536)) { error in
            XCTAssertEqual((error as? PerMessageDeflate.Failure)?.reason, .tooLarge)
        }
        // ByteBuffer rounds capacity up to a power of two: at most about twice the limit.
        XCTAssertLessThanOrEqual(output.capacity, 2 * 65536)
    }

    func testCorruptDataIsReported() {
        let receiver = PerMessageDeflate(parameters: parameters(takeover: false))
        var output = ByteBuffer()
        XCTAssertThrowsError(
            try receiver.decompress(
                ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0x00, 0x12]),
                final: true,
                into: &output,
                limit: 1000
            )
        ) { error in
            XCTAssertEqual((error as? PerMessageDeflate.Failure)?.reason, .corrupt)
        }
    }

    func testIdleContextsAreReleasedOnlyWithoutTakeover() throws {
        let reset = PerMessageDeflate(parameters: parameters(takeover: false))
        _ = try reset.compress(ByteBuffer(string: String(repeating: "x", count: 500)), allocator: .init())
        XCTAssertTrue(reset.allocatedContexts.deflater)
        reset.releaseIdleContexts(midMessage: false)  // used since the last tick: kept
        XCTAssertTrue(reset.allocatedContexts.deflater)
        reset.releaseIdleContexts(midMessage: false)  // idle for a whole tick: released
        XCTAssertFalse(reset.allocatedContexts.deflater)

        let kept = PerMessageDeflate(parameters: parameters(takeover: true))
        _ = try kept.compress(ByteBuffer(string: String(repeating: "x", count: 500)), allocator: .init())
        kept.releaseIdleContexts(midMessage: false)
        kept.releaseIdleContexts(midMessage: false)
        XCTAssertTrue(kept.allocatedContexts.deflater)  // its window is state the peer relies on
    }
}

import GatewayCore
import GatewayWebSocket
import Logging
import NIOCore
import NIOEmbedded
import NIOWebSocket
import SessionTestSupport
import XCTest

final class WebSocketSessionHandlerTests: XCTestCase {
    var channel: EmbeddedChannel!
    var session: WebSocketSessionHandler!

    func makeSession(limits: WebSocketLimits = .init(), deflate: PerMessageDeflateParameters? = nil) throws {
        channel = EmbeddedChannel()
        session = WebSocketSessionHandler(
            configuration: .init(routeName: "echo", limits: limits, deflate: deflate, subprotocol: nil),
            application: EchoApplication(),
            peer: "test",
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        try channel.pipeline.syncOperations.addHandlers([WireFrameAdapter(), session])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    }

    /// Every frame the session wrote was read by the test: a stray one fails it.
    override func tearDown() {
        guard let channel else { return }
        XCTAssertNoThrow(
            XCTAssertTrue(try channel.finish(acceptAlreadyClosed: true).isClean, "frames were left unread")
        )
    }

    func frame(_ opcode: WebSocketOpcode, _ bytes: [UInt8], fin: Bool = true, masked: Bool = true) -> WebSocketFrame {
        var data = ByteBuffer(bytes: bytes)
        let key: WebSocketMaskingKey? = masked ? WebSocketMaskingKey([1, 2, 3, 4]) : nil
        if let key { data.webSocketMask(key) }
        return WebSocketFrame(fin: fin, opcode: opcode, maskKey: key, data: data)
    }

    func send(_ frame: WebSocketFrame) throws {
        try channel.writeInbound(frame)
    }

    /// Bytes as they come off the socket, past the test's frame encoder.
    func sendBytes(_ bytes: ByteBuffer) throws {
        let context = try channel.pipeline.syncOperations.context(handlerType: WireFrameAdapter.self)
        context.fireChannelRead(NIOAny(bytes))
        context.fireChannelReadComplete()
    }

    func sent() throws -> WebSocketFrame? {
        try channel.readOutbound(as: WebSocketFrame.self)
    }

    func closeCode(_ frame: WebSocketFrame?) -> UInt16? {
        guard let frame, frame.opcode == .connectionClose else { return nil }
        var data = frame.data
        return data.readInteger(as: UInt16.self)
    }

    func testEchoesTextAndBinaryAndCounts() throws {
        try makeSession()
        try send(frame(.text, Array("hi".utf8)))
        try send(frame(.binary, [0, 1, 2], fin: false))
        try send(frame(.continuation, [3]))
        XCTAssertEqual(try sent().map { ($0.opcode, $0.data) }?.1, ByteBuffer(string: "hi"))
        let binary = try XCTUnwrap(try sent())
        XCTAssertEqual(binary.opcode, .binary)
        XCTAssertEqual(binary.data, ByteBuffer(bytes: [0, 1, 2, 3]))
        XCTAssertEqual(session.statistics.messagesIn, 2)
        XCTAssertEqual(session.statistics.bytesOut, 6)
    }

    /// The session reuses a message's buffer for the next one only when nobody holds it: an
    /// application that keeps messages (a hub, a history) keeps them intact.
    func testAKeptMessageIsNotOverwrittenByTheNext() throws {
        final class Keeper: WebSocketApplication {
            var kept: [WebSocketMessage] = []
            func sessionDidOpen(_ session: WebSocketSessionHandler) {}
            func session(_ session: WebSocketSessionHandler, didReceive message: WebSocketMessage) {
                kept.append(message)
            }
            func sessionDidClose(_ session: WebSocketSessionHandler, code: WebSocketErrorCode?) {}
        }
        let keeper = Keeper()
        channel = EmbeddedChannel()
        session = WebSocketSessionHandler(
            configuration: .init(routeName: "keep", limits: .init(), deflate: nil, subprotocol: nil),
            application: keeper,
            peer: "test",
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        try channel.pipeline.syncOperations.addHandlers([WireFrameAdapter(), session])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        for text in ["first message", "second", "third one, longer than both"] {
            try send(frame(.text, Array(text.utf8)))
        }
        XCTAssertEqual(
            keeper.kept.map { String(buffer: $0.data) },
            ["first message", "second", "third one, longer than both"]
        )
    }

    /// A frame split across reads at every byte (the TCP stream gives no boundaries) and
    /// several frames in one read: each message arrives once, whole.
    func testFramesSplitAnywhereAndBatchedArriveWhole() throws {
        try makeSession()
        let wire = WireFrameAdapter.encode(frame(.text, Array(String(repeating: "split ", count: 30).utf8)))
        for cut in 1..<wire.readableBytes {
            try sendBytes(wire.getSlice(at: 0, length: cut)!)
            try sendBytes(wire.getSlice(at: cut, length: wire.readableBytes - cut)!)
            XCTAssertEqual(
                try sent().map { String(buffer: $0.data) },
                String(repeating: "split ", count: 30),
                "cut \(cut)"
            )
        }
        var batch = ByteBuffer()
        for index in 0..<3 {
            var bytes = WireFrameAdapter.encode(frame(.binary, [UInt8(index)]))
            batch.writeBuffer(&bytes)
        }
        try sendBytes(batch)
        XCTAssertEqual(
            try (0..<3).map { _ in try XCTUnwrap(try sent()).data },
            [[0], [1], [2]].map { ByteBuffer(bytes: $0) }
        )
        XCTAssertEqual(session.statistics.messagesIn, wire.readableBytes - 1 + 3)
    }

    /// A frame much larger than one read, arriving 100 bytes at a time, followed in the last
    /// read by the start of the next: both messages arrive whole.
    func testAFrameInManyReadsArrivesWhole() throws {
        try makeSession()
        let big = (0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        var wire = WireFrameAdapter.encode(frame(.binary, big))
        var next = WireFrameAdapter.encode(frame(.binary, [42, 43]))
        wire.writeBuffer(&next)
        while wire.readableBytes > 0 {
            try sendBytes(wire.readSlice(length: min(100, wire.readableBytes))!)
        }
        XCTAssertEqual(try sent()?.data, ByteBuffer(bytes: big))
        XCTAssertEqual(try sent()?.data, ByteBuffer(bytes: [42, 43]))
    }

    /// Invalid UTF-8 in a text frame fails the connection as soon as it arrives, before the
    /// frame's end (RFC 6455 §8.1; Autobahn 6.4.3 and 6.4.4); what follows is not read.
    func testInvalidUTF8FailsBeforeTheTextFrameEnds() throws {
        try makeSession()
        let valid = Array("κόσμε".utf8)
        let wire = WireFrameAdapter.encode(frame(.text, valid + [0xF4, 0x90, 0x80, 0x80] + Array("edited".utf8)))
        let header = 6
        try sendBytes(wire.getSlice(at: 0, length: header + valid.count)!)
        try sendBytes(wire.getSlice(at: header + valid.count, length: 1)!)  // F4 may still start U+10xxxx
        XCTAssertNil(try sent())
        try sendBytes(wire.getSlice(at: header + valid.count + 1, length: 1)!)  // F4 90 is past U+10FFFF
        XCTAssertEqual(closeCode(try sent()), 1007)
        let rest = wire.readableBytes - (header + valid.count + 2)
        try sendBytes(wire.getSlice(at: header + valid.count + 2, length: rest)!)
        XCTAssertNil(try sent())
    }

    /// The same for a continuation of a text message: the check carries the message's state
    /// from its earlier frames (a code point split between frames).
    func testInvalidUTF8InAnArrivingContinuationFailsAtOnce() throws {
        try makeSession()
        try send(frame(.text, Array("ok ".utf8) + [0xCE], fin: false))  // κ's first byte
        let wire = WireFrameAdapter.encode(frame(.continuation, [0xBA] + Array("ok".utf8) + [0xFF] + Array("x".utf8)))
        try sendBytes(wire.getSlice(at: 0, length: 6 + 3)!)  // completes κ, then "ok"
        XCTAssertNil(try sent())
        try sendBytes(wire.getSlice(at: 9, length: 1)!)  // FF is never UTF-8
        XCTAssertEqual(closeCode(try sent()), 1007)
    }

    /// Valid text split at every byte, multi-byte characters included, is never failed early;
    /// a binary frame is not text and is not looked into.
    func testValidTextAndBinaryFramesSplitAnywhereAreNotFailedEarly() throws {
        try makeSession()
        let text = "héllo wörld, κόσμε, 世界 🙂"
        let wire = WireFrameAdapter.encode(frame(.text, Array(text.utf8)))
        for cut in 1..<wire.readableBytes {
            try sendBytes(wire.getSlice(at: 0, length: cut)!)
            try sendBytes(wire.getSlice(at: cut, length: wire.readableBytes - cut)!)
            XCTAssertEqual(try sent().map { String(buffer: $0.data) }, text, "cut \(cut)")
        }
        let binary = WireFrameAdapter.encode(frame(.binary, [0xFF, 0xFE, 0x00]))
        try sendBytes(binary.getSlice(at: 0, length: 8)!)
        XCTAssertNil(try sent())
        try sendBytes(binary.getSlice(at: 8, length: 1)!)
        XCTAssertEqual(try sent()?.data, ByteBuffer(bytes: [0xFF, 0xFE, 0x00]))
    }

    func testUnmaskedFrameFailsWith1002() throws {
        try makeSession()
        try send(frame(.text, Array("hi".utf8), masked: false))
        XCTAssertEqual(closeCode(try sent()), 1002)
        // Data after our Close is discarded, not echoed.
        try send(frame(.text, Array("late".utf8)))
        XCTAssertNil(try sent())
    }

    func testOversizedMessageFailsWith1009() throws {
        try makeSession(limits: WebSocketLimits(maxMessageBytes: 200))
        try send(frame(.binary, Array(repeating: 1, count: 150), fin: false))
        try send(frame(.continuation, Array(repeating: 1, count: 51)))
        XCTAssertEqual(closeCode(try sent()), 1009)
    }

    func testClientCloseIsEchoedAndTCPClosed() throws {
        try makeSession()
        try send(frame(.connectionClose, [0x0F, 0xA0]))  // 4000
        XCTAssertEqual(closeCode(try sent()), 4000)
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(session.statistics.closedBy, "client")
    }

    func testKeepalivePingsThenCloses1011() throws {
        try makeSession(limits: WebSocketLimits(pingInterval: .seconds(10), pongTimeout: .seconds(5)))
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        XCTAssertEqual(try sent()?.opcode, .ping)
        try send(frame(.pong, []))
        channel.embeddedEventLoop.advanceTime(by: .seconds(5))  // answered: no close
        XCTAssertNil(try sent())
        XCTAssertTrue(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        XCTAssertEqual(try sent()?.opcode, .ping)
        channel.embeddedEventLoop.advanceTime(by: .seconds(5))  // not answered
        XCTAssertEqual(closeCode(try sent()), 1011)
        XCTAssertFalse(channel.isActive)
    }

    func testTrafficPostponesPings() throws {
        try makeSession(limits: WebSocketLimits(pingInterval: .seconds(10), pongTimeout: .seconds(5)))
        for _ in 0..<3 {
            channel.embeddedEventLoop.advanceTime(by: .seconds(9))
            try send(frame(.text, Array("x".utf8)))
            XCTAssertEqual(try sent()?.opcode, .text)
        }
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        XCTAssertNil(try sent())  // heard from the client within the interval: no ping
    }

    func testCloseTimeoutDropsTCP() throws {
        try makeSession(limits: WebSocketLimits(closeTimeout: .seconds(2)))
        session.close(code: .goingAway, reason: "bye")
        XCTAssertEqual(closeCode(try sent()), 1001)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        XCTAssertTrue(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        XCTAssertFalse(channel.isActive)
    }

    func testIdleSessionGivesBackItsCompressionMemory() throws {
        let deflate = PerMessageDeflateNegotiation.negotiate(headerValues: ["permessage-deflate"], settings: .init())
        try makeSession(limits: WebSocketLimits(pingInterval: .seconds(10)), deflate: deflate)
        try send(frame(.text, Array(String(repeating: "compress me ", count: 50).utf8)))
        let reply = try XCTUnwrap(try sent())
        XCTAssertTrue(reply.rsv1)
        XCTAssertEqual(session.compressionContexts?.deflater, true)
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))  // busy in this interval: kept
        XCTAssertEqual(session.compressionContexts?.deflater, true)
        _ = try sent()  // the ping
        try send(frame(.pong, []))
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))  // a quiet interval: released
        XCTAssertEqual(session.compressionContexts?.deflater, false)
        XCTAssertEqual(session.compressionContexts?.inflater, false)
    }

    /// The buffers a message leaves for the next one are given back at the keepalive tick, the
    /// ping written there included: a session that has gone quiet holds none.
    func testAQuietSessionGivesBackItsBuffers() throws {
        try makeSession(limits: WebSocketLimits(pingInterval: .seconds(10)))
        try send(frame(.text, Array("hello".utf8)))
        XCTAssertEqual(try sent()?.data, ByteBuffer(string: "hello"))
        XCTAssertTrue(session.heldBuffers == (true, true), "kept for the next message")
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))  // busy in this interval
        XCTAssertTrue(session.heldBuffers == (false, false))
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))  // quiet: a ping
        XCTAssertEqual(try sent()?.opcode, .ping)
        XCTAssertTrue(session.heldBuffers == (false, false), "the ping's buffer is not kept")
        try send(frame(.pong, []))
    }

    /// Messages pushed at a client (worker sends, hub publishes) cannot be slowed for one client:
    /// once its queue is over `send_queue_bytes` (the channel is not writable) it is closed 1013.
    func testPushedMessagesToAFullQueueClose1013() throws {
        try makeSession()
        XCTAssertTrue(session.sendUnlessFull(.text("fits")))
        XCTAssertEqual(try sent()?.data, ByteBuffer(string: "fits"))
        channel.isWritable = false
        XCTAssertFalse(session.sendUnlessFull(.text("overflow")))
        XCTAssertEqual(closeCode(try sent()), 1013)
        XCTAssertNil(try sent())  // the overflowing message was not queued
        XCTAssertTrue(session.sendUnlessFull(.text("after close")))  // closing: dropped quietly
        XCTAssertNil(try sent())
    }

    func testQuiesceClosesWith1001() throws {
        try makeSession()
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        XCTAssertEqual(closeCode(try sent()), 1001)
    }

    // MARK: Pushed messages and the overflow policy

    func testDropOldestKeepsTheNewestWithinTheBudgetInOrder() throws {
        try makeSession(limits: WebSocketLimits(sendQueueBytes: 1024, overflow: .dropOldest))
        channel.isWritable = false
        for index in 0..<10 {
            let payload = String(index) + String(repeating: "x", count: 299)
            XCTAssertTrue(session.sendUnlessFull(.text(payload)))
        }
        XCTAssertNil(try sent(), "nothing is written while the client is not taking data")
        XCTAssertEqual(session.backlogSize.messages, 3)
        XCTAssertEqual(session.statistics.messagesDropped, 7)
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        let firsts = try (0..<3).map { _ in try XCTUnwrap(try sent()).data.getString(at: 0, length: 1) }
        XCTAssertEqual(firsts, ["7", "8", "9"])
        XCTAssertNil(try sent())
        XCTAssertEqual(session.backlogSize.messages, 0)
    }

    func testDropOldestKeepsOneMessageLargerThanTheBudget() throws {
        try makeSession(limits: WebSocketLimits(sendQueueBytes: 1024, overflow: .dropOldest))
        channel.isWritable = false
        session.sendUnlessFull(.text("old"))
        session.sendUnlessFull(.binary(Array(repeating: 7, count: 4096)))
        XCTAssertEqual(session.backlogSize.messages, 1)
        XCTAssertEqual(session.backlogSize.bytes, 4096)
        XCTAssertEqual(session.statistics.messagesDropped, 1)
    }

    func testClosePolicyClosesWithTheConfiguredCode() throws {
        try makeSession(limits: WebSocketLimits(overflow: .close, overflowCloseCode: .policyViolation))
        XCTAssertTrue(session.sendUnlessFull(.text("taken")))
        XCTAssertEqual(try sent()?.data, ByteBuffer(string: "taken"))
        channel.isWritable = false
        XCTAssertFalse(session.sendUnlessFull(.text("overflow")))
        XCTAssertEqual(closeCode(try sent()), 1008)
        XCTAssertEqual(session.statistics.messagesDropped, 1)
    }

    func testBacklogIsDroppedWhenTheSessionCloses() throws {
        try makeSession(limits: WebSocketLimits(overflow: .dropOldest))
        channel.isWritable = false
        session.sendUnlessFull(.text("a"))
        session.sendUnlessFull(.text("b"))
        session.close(code: .goingAway)
        XCTAssertEqual(session.statistics.messagesDropped, 2)
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        XCTAssertEqual(closeCode(try sent()), 1001)
        XCTAssertNil(try sent(), "nothing follows the Close frame")
    }

    func testFanOutMessageIsCompressedOnceForSessionsThatResetTheirContext() throws {
        let parameters = try XCTUnwrap(
            PerMessageDeflateNegotiation.negotiate(headerValues: ["permessage-deflate"], settings: .init())
        )
        XCTAssertTrue(parameters.serverNoContextTakeover)
        var payloads: [ByteBuffer] = []
        let message = WebSocketMessage.fanOut(
            kind: .text,
            data: ByteBuffer(string: String(repeating: "hello hub ", count: 50))
        )
        for _ in 0..<3 {
            try makeSession(deflate: parameters)
            session.sendUnlessFull(message)
            let frame = try XCTUnwrap(try sent())
            XCTAssertTrue(frame.rsv1)
            payloads.append(frame.data)
            _ = try channel.finish(acceptAlreadyClosed: true)
        }
        XCTAssertEqual(message.sharedCompression?.compressions, 1)
        XCTAssertEqual(Set(payloads).count, 1, "every subscriber gets the same bytes")
        XCTAssertLessThan(payloads[0].readableBytes, 500)

        // A session that keeps its context compresses for itself.
        var takeover = CompressionSettings()
        takeover.serverNoContextTakeover = false
        let keeping = try XCTUnwrap(
            PerMessageDeflateNegotiation.negotiate(headerValues: ["permessage-deflate"], settings: takeover)
        )
        XCTAssertFalse(keeping.serverNoContextTakeover)
        try makeSession(deflate: keeping)
        session.sendUnlessFull(message)
        XCTAssertTrue(try XCTUnwrap(try sent()).rsv1)
        XCTAssertEqual(message.sharedCompression?.compressions, 1)
    }
}

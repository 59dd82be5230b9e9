import GatewayCore
import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import NIOWebSocket
import SessionTestSupport
import XCTest

@testable import GatewayWebSocket

/// A client that sends thousands of messages in one read gets `framesPerTurn` of them handled,
/// then waits for its next turn: the event loop's other channels go first.
final class SessionTurnTests: XCTestCase {
    var channel: EmbeddedChannel!
    var reads = ReadCounter()

    override func tearDown() {
        guard let channel else { return }
        XCTAssertNoThrow(
            XCTAssertTrue(try channel.finish(acceptAlreadyClosed: true).isClean, "frames were left unread")
        )
    }

    private func makeSession() throws {
        channel = EmbeddedChannel()
        let session = WebSocketSessionHandler(
            configuration: .init(routeName: "echo", limits: WebSocketLimits(), deflate: nil, subprotocol: nil),
            application: EchoApplication(),
            peer: "test",
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        try channel.pipeline.syncOperations.addHandlers([reads, WireFrameAdapter(), session])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    }

    /// `count` masked text frames ("0", "1", …) in one buffer, as one read brings them.
    private func frames(_ count: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        for index in 0..<count {
            let text = String(index)
            buffer.writeInteger(UInt8(0x81))
            buffer.writeInteger(UInt8(0x80 | text.utf8.count))
            buffer.writeBytes([0, 0, 0, 0])  // a zero key leaves the payload as it is
            buffer.writeString(text)
        }
        return buffer
    }

    private func echoes() throws -> [String] {
        var texts: [String] = []
        while let frame = try channel.readOutbound(as: WebSocketFrame.self) {
            texts.append(String(buffer: frame.data))
        }
        return texts
    }

    func testABurstIsHandledATurnAtATimeInOrder() throws {
        try makeSession()
        let context = try channel.pipeline.syncOperations.context(handlerType: WireFrameAdapter.self)
        context.fireChannelRead(NIOAny(frames(100)))
        context.fireChannelReadComplete()
        let turn = WebSocketSessionHandler.framesPerTurn
        XCTAssertEqual(try echoes(), (0..<turn).map(String.init))
        let before = reads.count
        channel.read()
        XCTAssertEqual(reads.count, before, "nothing more is read while the turn is over")
        channel.embeddedEventLoop.run()
        XCTAssertEqual(try echoes(), (turn..<100).map(String.init))
        XCTAssertEqual(reads.count, before + 1, "the read asked for meanwhile happens after the burst")
    }

    func testMoreReadsInTheSameBatchWaitBehindTheTurn() throws {
        try makeSession()
        let context = try channel.pipeline.syncOperations.context(handlerType: WireFrameAdapter.self)
        // Two reads of one batch, the second starting in the middle of a frame.
        var tail = frames(40)
        let head = tail.readSlice(length: tail.readableBytes / 2 + 3)!
        context.fireChannelRead(NIOAny(head))
        context.fireChannelRead(NIOAny(tail))
        context.fireChannelReadComplete()
        XCTAssertEqual(try echoes().count, WebSocketSessionHandler.framesPerTurn)
        channel.embeddedEventLoop.run()
        XCTAssertEqual(try echoes(), (WebSocketSessionHandler.framesPerTurn..<40).map(String.init))
    }

    func testAClientUnderTheTurnIsNeverHeld() throws {
        try makeSession()
        let context = try channel.pipeline.syncOperations.context(handlerType: WireFrameAdapter.self)
        for _ in 0..<3 {
            context.fireChannelRead(NIOAny(frames(WebSocketSessionHandler.framesPerTurn - 1)))
            context.fireChannelReadComplete()
            XCTAssertEqual(try echoes().count, WebSocketSessionHandler.framesPerTurn - 1)
        }
        let before = reads.count
        channel.read()
        XCTAssertEqual(reads.count, before + 1)
    }
}

/// `EventLoopYield` on a real event loop: work yielded from a task runs after the loop has
/// polled its sockets, not among the tasks that task scheduled (as `execute` would).
final class EventLoopYieldTests: XCTestCase {
    func testYieldedWorkRunsAfterTheTasksOfItsTick() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { XCTAssertNoThrow(try group.syncShutdownGracefully()) }
        let loop = group.next()
        let yield = EventLoopYield()
        defer { yield.close() }
        let order = try loop.submit { () -> EventLoopFuture<[String]> in
            let done = loop.makePromise(of: [String].self)
            var order: [String] = []
            // A chain of tasks, each scheduling the next: NIO runs them all in this tick.
            func chain(_ left: Int) {
                order.append("task")
                if left > 0 { loop.assumeIsolated().execute { chain(left - 1) } }
            }
            yield.afterNextPoll(on: loop) {
                order.append("yielded")
                yield.afterNextPoll(on: loop) {
                    order.append("again")
                    done.succeed(order)
                }
                chain(2)
            }
            chain(99)
            return done.futureResult
        }.flatMap { $0 }.wait()
        XCTAssertEqual(
            order,
            Array(repeating: "task", count: 100) + ["yielded"] + ["task", "task", "task"] + ["again"]
        )
    }

    func testWorkLeftAtCloseStillRuns() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { XCTAssertNoThrow(try group.syncShutdownGracefully()) }
        let loop = group.next()
        let yield = EventLoopYield()
        let ran = try loop.submit { () -> EventLoopFuture<Bool> in
            let done = loop.makePromise(of: Bool.self)
            yield.close()
            yield.afterNextPoll(on: loop) { done.succeed(true) }
            return done.futureResult
        }.flatMap { $0 }.wait()
        XCTAssertTrue(ran)
    }
}

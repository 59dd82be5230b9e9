import GatewayCore
import NIOCore
import NIOPosix
import XCTest

/// An event to wait for (a pool's first link, a process's exit, a route's retirement): waits
/// before and after the opening end with it; one that ended fails every wait; a wait that gives
/// up (time, cancellation) ends false and leaves nothing behind.
final class LatchTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!

    override func setUp() { group = MultiThreadedEventLoopGroup(numberOfThreads: 1) }
    override func tearDown() { try? group.syncShutdownGracefully() }

    func testWaitsBeforeAndAfterTheOpeningSucceed() async {
        let latch = Latch()
        let loop = group.next()
        let waiter = Task { await latch.opens(within: .seconds(60), on: loop) }
        XCTAssertFalse(latch.isOpen)
        latch.open()
        let opened = await waiter.value
        XCTAssertTrue(opened)
        let late = await latch.opens(within: nil, on: loop)
        XCTAssertTrue(late, "open for good")
        latch.end()
        XCTAssertTrue(latch.isOpen, "an end after the opening changes nothing")
    }

    func testAnEndBeforeTheOpeningFailsEveryWait() async {
        let latch = Latch()
        let loop = group.next()
        let early = Task { await latch.opens(within: .seconds(60), on: loop) }
        latch.end()
        let ended = await early.value
        XCTAssertFalse(ended, "an ended latch does not open")
        let after = await latch.opens(within: .seconds(60), on: loop)
        XCTAssertFalse(after)
        latch.open()
        XCTAssertFalse(latch.isOpen, "what it stood for can no longer happen")
    }

    func testTheTimeOrACancellationEndsAWait() async {
        let latch = Latch()
        let loop = group.next()
        let timedOut = await latch.opens(within: .milliseconds(20), on: loop)
        XCTAssertFalse(timedOut)
        let waiter = Task { await latch.opens(within: nil, on: loop) }
        waiter.cancel()
        let cancelled = await waiter.value
        XCTAssertFalse(cancelled)
        latch.open()  // no wait left to complete
        let opened = await latch.opens(within: .milliseconds(20), on: loop)
        XCTAssertTrue(opened)
    }

    func testALatchMadeOpenNeedsNoEvent() async {
        let opened = await Latch(open: true).opens(within: .milliseconds(1), on: group.next())
        XCTAssertTrue(opened)
    }
}

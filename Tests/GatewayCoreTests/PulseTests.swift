import GatewayCore
import NIOCore
import NIOPosix
import XCTest

/// The pool's "something changed": a beat ends the waits taken before it, not later ones; a
/// wait that gives up leaves nothing behind; once ended no wait lasts.
final class PulseTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!

    override func setUp() { group = MultiThreadedEventLoopGroup(numberOfThreads: 1) }
    override func tearDown() { try? group.syncShutdownGracefully() }

    func testABeatEndsTheWaitsTakenBeforeIt() async {
        let pulse = Pulse()
        let loop = group.next()
        let first = pulse.next(on: loop)
        let second = pulse.next(on: loop)
        pulse.beat()
        let heardFirst = await pulse.wait(for: first, within: .seconds(60))
        let heardSecond = await pulse.wait(for: second, within: .seconds(60))
        XCTAssertTrue(heardFirst)
        XCTAssertTrue(heardSecond)
        let later = pulse.next(on: loop)
        let heardLater = await pulse.wait(for: later, within: .milliseconds(20))
        XCTAssertFalse(heardLater, "a beat taken after the last one waits for the next")
    }

    func testABeatDuringTheLookIsNotMissed() async {
        let pulse = Pulse()
        let beat = pulse.next(on: group.next())
        pulse.beat()  // between the look and the wait
        let heard = await pulse.wait(for: beat, within: .seconds(60))
        XCTAssertTrue(heard)
    }

    func testEndedEndsEveryWait() async {
        let pulse = Pulse()
        let loop = group.next()
        let before = pulse.next(on: loop)
        pulse.end()
        let heardBefore = await pulse.wait(for: before, within: .seconds(60))
        XCTAssertFalse(heardBefore)
        let after = pulse.next(on: loop)
        let heardAfter = await pulse.wait(for: after, within: .seconds(60))
        XCTAssertFalse(heardAfter, "at once")
    }

    func testCancellingAWaitEndsIt() async {
        let pulse = Pulse()
        let beat = pulse.next(on: group.next())
        let waiter = Task { await pulse.wait(for: beat, within: .seconds(3600)) }
        waiter.cancel()
        let heard = await waiter.value
        XCTAssertFalse(heard)
        pulse.beat()  // the wait that gave up is no longer there to complete
    }
}

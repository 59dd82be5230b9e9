import GatewayCore
import NIOCore
import NIOPosix
import XCTest

/// Waiting for an event with a bound: whichever comes first — the event, its failure, the
/// time or the waiter's cancellation — decides, once.
final class FutureWithinTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!

    override func setUp() { group = MultiThreadedEventLoopGroup(numberOfThreads: 1) }
    override func tearDown() { try? group.syncShutdownGracefully() }

    func testTheEventDecides() async {
        let loop = group.next()
        let promise = loop.makePromise(of: Void.self)
        loop.execute { promise.succeed() }
        let succeeded = await promise.futureResult.succeeds(within: .seconds(60))
        XCTAssertTrue(succeeded)
    }

    func testAFailureIsNotASuccess() async {
        let loop = group.next()
        let failed: EventLoopFuture<Void> = loop.makeFailedFuture(ChannelError.ioOnClosedChannel)
        let succeeded = await failed.succeeds(within: .seconds(60))
        XCTAssertFalse(succeeded)
    }

    func testTheTimeDecidesWhenNothingHappens() async {
        let promise = group.next().makePromise(of: Void.self)
        let succeeded = await promise.futureResult.succeeds(within: .milliseconds(20))
        XCTAssertFalse(succeeded)
        promise.succeed()  // too late: the answer stays
    }

    func testCancellingTheWaiterEndsTheWait() async {
        let promise = group.next().makePromise(of: Void.self)
        let waiter = Task { await promise.futureResult.succeeds(within: .seconds(3600)) }
        waiter.cancel()
        let succeeded = await waiter.value
        XCTAssertFalse(succeeded)
        promise.succeed()
    }
}

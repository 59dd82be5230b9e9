import GatewayCore
import NIOCore
import XCTest

final class TokenBucketTests: XCTestCase {
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    func testABurstThenTheRate() {
        var bucket = TokenBucket(rate: 2, burst: 3, now: start)
        XCTAssertEqual((0..<4).map { _ in bucket.take(now: start) }, [true, true, true, false])
        XCTAssertEqual(bucket.wait(now: start), .milliseconds(500))
        XCTAssertFalse(bucket.take(now: start + .milliseconds(499)))
        XCTAssertTrue(bucket.take(now: start + .milliseconds(500)))
        XCTAssertFalse(bucket.take(now: start + .milliseconds(500)))
    }

    func testItNeverHoldsMoreThanTheBurst() {
        var bucket = TokenBucket(rate: 100, burst: 2, now: start)
        XCTAssertTrue(bucket.isFull(now: start))
        _ = bucket.take(now: start)
        XCTAssertFalse(bucket.isFull(now: start))
        XCTAssertTrue(bucket.isFull(now: start + .seconds(60)))
        let later = start + .seconds(60)
        XCTAssertEqual((0..<3).map { _ in bucket.take(now: later) }, [true, true, false])
    }

    func testTimeGoingBackwardsGivesNothing() {
        var bucket = TokenBucket(rate: 1, burst: 1, now: start)
        XCTAssertTrue(bucket.take(now: start))
        XCTAssertFalse(bucket.take(now: start - .seconds(5)))
    }

    func testARateOfZeroIsNoLimit() {
        var bucket = TokenBucket(rate: 0, burst: 0, now: start)
        XCTAssertTrue((0..<1000).allSatisfy { _ in bucket.take(now: start) })
        XCTAssertEqual(bucket.wait(now: start), .zero)
    }

    func testSpendingGoesIntoDebtThatTimeRepays() {
        var bucket = TokenBucket(rate: 1000, burst: 1000, now: start)
        bucket.spend(3000, now: start)
        XCTAssertEqual(bucket.tokens, -2000)
        XCTAssertEqual(bucket.wait(now: start), .milliseconds(2001), "until one token is back")
        XCTAssertFalse(bucket.take(now: start + .seconds(2)))
        XCTAssertTrue(bucket.take(now: start + .milliseconds(2001)))
    }
}

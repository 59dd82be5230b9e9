import GatewayCore
import NIOCore
import XCTest

final class BackoffTests: XCTestCase {
    func testGrowsWithJitterUpToTheMaximumAndResets() {
        var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(2))
        var ceilings: [Int64] = []
        for attempt in 0..<10 {
            let delay = backoff.next().nanoseconds
            let ceiling = min(Int64(2_000_000_000), 100_000_000 << attempt)
            XCTAssertLessThanOrEqual(delay, ceiling)
            XCTAssertGreaterThanOrEqual(delay, ceiling / 2)
            ceilings.append(ceiling)
        }
        XCTAssertEqual(ceilings.last, 2_000_000_000)
        backoff.reset()
        XCTAssertLessThanOrEqual(backoff.next(), .milliseconds(100))
    }
}

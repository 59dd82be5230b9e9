import XCTest

@testable import wssgate

final class HeapTrimPolicyTests: XCTestCase {
    func testATrimFollowsAWaveOfClosesOnceItSettles() {
        var policy = HeapTrimPolicy(threshold: 100)
        for count in [0, 500, 2_000, 2_000] { XCTAssertFalse(policy.observe(connections: count), "\(count)") }
        XCTAssertFalse(policy.observe(connections: 1_200), "still falling")
        XCTAssertFalse(policy.observe(connections: 10), "still falling")
        XCTAssertTrue(policy.observe(connections: 10), "settled, 1,990 below the peak")
        XCTAssertFalse(policy.observe(connections: 10), "once per wave")
    }

    func testSmallChangesDoNotTrim() {
        var policy = HeapTrimPolicy(threshold: 100, connections: 1_000)
        for count in [990, 990, 950, 950, 1_020, 1_020, 960, 960] {
            XCTAssertFalse(policy.observe(connections: count), "\(count)")
        }
        XCTAssertFalse(policy.observe(connections: 921))
        XCTAssertFalse(policy.observe(connections: 921), "settled, but 99 below the peak of 1,020")
        XCTAssertFalse(policy.observe(connections: 920))
        XCTAssertTrue(policy.observe(connections: 920), "100 below the peak")
    }
}

import GatewayCore
import XCTest

final class ReachabilityTests: XCTestCase {
    /// News is a change, or a peer that is down from the first attempt on; nothing else.
    func testOnlyChangesAreNews() {
        let reachability = Reachability()
        XCTAssertFalse(reachability.isDown)
        XCTAssertFalse(reachability.isUp)
        XCTAssertEqual(reachability.record(reachable: false), false)
        XCTAssertTrue(reachability.isDown)
        XCTAssertNil(reachability.record(reachable: false))
        XCTAssertEqual(reachability.record(reachable: true), true)
        XCTAssertNil(reachability.record(reachable: true))
        XCTAssertTrue(reachability.isUp)

        let upFromTheStart = Reachability()
        XCTAssertNil(upFromTheStart.record(reachable: true))
        XCTAssertTrue(upFromTheStart.isUp)
    }
}

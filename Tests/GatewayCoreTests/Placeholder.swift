import XCTest
final class PGatewayCoreTests: XCTestCase { func testNothing() {} }

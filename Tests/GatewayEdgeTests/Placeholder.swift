import XCTest
final class PGatewayEdgeTests: XCTestCase { func testNothing() {} }

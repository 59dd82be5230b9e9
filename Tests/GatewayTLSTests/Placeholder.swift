import XCTest
final class PGatewayTLSTests: XCTestCase { func testNothing() {} }

import XCTest
final class PGatewayLoggingTests: XCTestCase { func testNothing() {} }

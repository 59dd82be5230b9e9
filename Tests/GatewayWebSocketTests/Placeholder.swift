import XCTest
final class PGatewayWebSocketTests: XCTestCase { func testNothing() {} }

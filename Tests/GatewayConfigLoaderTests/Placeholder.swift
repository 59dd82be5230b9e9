import XCTest
final class PGatewayConfigLoaderTests: XCTestCase { func testNothing() {} }

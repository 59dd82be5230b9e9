import GatewayCore
import XCTest

final class IPNetworkTests: XCTestCase {
    func testBlocksContainTheirAddresses() throws {
        let block = try XCTUnwrap(IPNetwork(parsing: "10.1.0.0/16"))
        XCTAssertTrue(block.contains(try XCTUnwrap(IPNetwork.parseAddress("10.1.200.3"))))
        XCTAssertFalse(block.contains(try XCTUnwrap(IPNetwork.parseAddress("10.2.0.1"))))
        XCTAssertEqual(block.description, "10.1.0.0/16")
        let v6 = try XCTUnwrap(IPNetwork(parsing: "2001:db8::/33"))
        XCTAssertTrue(v6.contains(try XCTUnwrap(IPNetwork.parseAddress("[2001:db8:7fff::1]"))))
        XCTAssertFalse(v6.contains(try XCTUnwrap(IPNetwork.parseAddress("2001:db8:8000::1"))))
        // A single address, and IPv4-mapped IPv6 as IPv4.
        let one = try XCTUnwrap(IPNetwork(parsing: "192.0.2.7"))
        XCTAssertEqual(one.prefix, 32)
        XCTAssertTrue(one.contains(try XCTUnwrap(IPNetwork.parseAddress("::ffff:192.0.2.7"))))
    }

    func testRefusesWhatIsNotAnAddress() {
        for bad in ["", "10.0.0.0/33", "::1/129", "example.com", "10.0.0.0/x", "1.2.3"] {
            XCTAssertNil(IPNetwork(parsing: bad), bad)
        }
    }
}

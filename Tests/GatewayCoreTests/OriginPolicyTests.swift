import GatewayCore
import XCTest

final class OriginPolicyTests: XCTestCase {
    func testDefaultAllowsOnlyTheGatewaysOwnHost() {
        let policy = OriginPolicy()
        XCTAssertTrue(policy.allows(origin: "https://gw.example", host: "gw.example"))
        XCTAssertTrue(policy.allows(origin: "https://gw.example:8443", host: "gw.example:8443"))
        XCTAssertTrue(policy.allows(origin: "https://GW.example:443", host: "gw.example"))
        XCTAssertFalse(policy.allows(origin: "https://evil.example", host: "gw.example"))
        XCTAssertFalse(policy.allows(origin: "https://gw.example:9000", host: "gw.example:8443"))
        XCTAssertFalse(policy.allows(origin: "null", host: "gw.example"))
        XCTAssertTrue(policy.allows(origin: nil, host: "gw.example"), "non-browser clients send no Origin")
    }

    func testExactAndWildcardEntries() {
        let policy = OriginPolicy(allowed: [
            "https://app.example.com", "https://*.example.org", "http://localhost:3000",
        ])
        XCTAssertTrue(policy.allows(origin: "https://app.example.com", host: "gw"))
        XCTAssertTrue(policy.allows(origin: "https://app.example.com:443", host: "gw"))
        XCTAssertFalse(policy.allows(origin: "http://app.example.com", host: "gw"))
        XCTAssertTrue(policy.allows(origin: "https://a.b.example.org", host: "gw"))
        XCTAssertFalse(policy.allows(origin: "https://example.org", host: "gw"))
        XCTAssertFalse(policy.allows(origin: "https://evilexample.org", host: "gw"))
        XCTAssertTrue(policy.allows(origin: "http://localhost:3000", host: "gw"))
        XCTAssertFalse(policy.allows(origin: "http://localhost:3001", host: "gw"))
        XCTAssertTrue(OriginPolicy(allowed: ["*"]).allows(origin: "https://anything.test", host: "gw"))
    }

    func testEntryValidation() {
        for good in ["*", "https://a.example", "http://*.example.com", "https://[::1]:8443"] {
            XCTAssertTrue(OriginPolicy.isValidEntry(good), good)
        }
        for bad in [
            "example.com", "https://", "https://a.example/path", "ftp://a.example", "https://*", "https://a.*.example",
        ] {
            XCTAssertFalse(OriginPolicy.isValidEntry(bad), bad)
        }
    }
}

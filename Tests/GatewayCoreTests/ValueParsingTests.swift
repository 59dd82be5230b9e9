import GatewayCore
import NIOCore
import XCTest

final class ValueParsingTests: XCTestCase {
    func testDurations() {
        XCTAssertEqual(ValueParsing.duration("30"), .seconds(30))
        XCTAssertEqual(ValueParsing.duration("30s"), .seconds(30))
        XCTAssertEqual(ValueParsing.duration("500ms"), .milliseconds(500))
        XCTAssertEqual(ValueParsing.duration("1.5s"), .milliseconds(1500))
        XCTAssertEqual(ValueParsing.duration("5m"), .minutes(5))
        XCTAssertEqual(ValueParsing.duration("1h"), .hours(1))
        XCTAssertNil(ValueParsing.duration("soon"))
        XCTAssertNil(ValueParsing.duration("-1s"))
        XCTAssertNil(ValueParsing.duration(""))
    }

    func testByteCounts() {
        XCTAssertEqual(ValueParsing.byteCount("1048576"), 1 << 20)
        XCTAssertEqual(ValueParsing.byteCount("64KiB"), 65536)
        XCTAssertEqual(ValueParsing.byteCount("1MiB"), 1 << 20)
        XCTAssertEqual(ValueParsing.byteCount("1MB"), 1_000_000)
        XCTAssertEqual(ValueParsing.byteCount("2 GiB"), 2 << 30)
        XCTAssertNil(ValueParsing.byteCount("lots"))
        XCTAssertNil(ValueParsing.byteCount("-5"))
    }

    func testBooleans() {
        XCTAssertEqual(ValueParsing.bool("true"), true)
        XCTAssertEqual(ValueParsing.bool("Off"), false)
        XCTAssertNil(ValueParsing.bool("maybe"))
    }

    func testFormatRoundTrips() {
        for amount in [TimeAmount.seconds(30), .milliseconds(250), .nanoseconds(7)] {
            XCTAssertEqual(ValueParsing.duration(ValueParsing.format(amount)), amount)
        }
    }
}

final class ListenAddressTests: XCTestCase {
    func testParsing() throws {
        XCTAssertEqual(try ListenAddress(parsing: "127.0.0.1:8443"), .tcp(host: "127.0.0.1", port: 8443))
        XCTAssertEqual(try ListenAddress(parsing: "[::1]:0"), .tcp(host: "::1", port: 0))
        XCTAssertEqual(try ListenAddress(parsing: ":443"), .tcp(host: "0.0.0.0", port: 443))
        XCTAssertEqual(try ListenAddress(parsing: "unix:/run/wssgate/gw.sock"), .unix(path: "/run/wssgate/gw.sock"))
        XCTAssertEqual(ListenAddress.tcp(host: "::", port: 8443).description, "[::]:8443")
        XCTAssertEqual(try ListenAddress(parsing: "gw-1.example.org:443"), .tcp(host: "gw-1.example.org", port: 443))
        XCTAssertEqual(try ListenAddress(parsing: "[fe80::1%eth0]:443"), .tcp(host: "fe80::1%eth0", port: 443))
    }

    func testRejects() {
        for bad in [
            "127.0.0.1", "127.0.0.1:99999", "::1:80", "[::1]80", "unix:relative",
            "unix:/" + String(repeating: "a", count: 120), "host:port",
            // Found by the configuration fuzz target: a host with line breaks loaded, and
            // printed as a quoted scalar that YAML folded into another address.
            "1\n\n21:8080", "local host:80", "[::1%]:80", "ex\u{E9}mple.org:80",
        ] {
            XCTAssertThrowsError(try ListenAddress(parsing: bad), bad)
        }
    }
}

final class RouteTableTests: XCTestCase {
    func testExactPathIgnoringQuery() {
        let table = RouteTable([RouteConfiguration(name: "echo", path: "/echo", backend: .echo)])
        XCTAssertEqual(table.route(forTarget: "/echo")?.name, "echo")
        XCTAssertEqual(table.route(forTarget: "/echo?token=1")?.name, "echo")
        XCTAssertNil(table.route(forTarget: "/echo/"))
        XCTAssertNil(table.route(forTarget: "/ECHO"))
        XCTAssertNil(table.route(forTarget: "/"))
    }
}

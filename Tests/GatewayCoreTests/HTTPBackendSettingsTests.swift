import GatewayCore
import XCTest

final class HTTPBackendSettingsTests: XCTestCase {
    func testURLsAreReadAsWritten() throws {
        let cases: [(String, HTTPBackendSettings.Endpoint, String, String)] = [
            ("http://127.0.0.1:9000/", .tcp(host: "127.0.0.1", port: 9000), "/", "127.0.0.1:9000"),
            ("http://app", .tcp(host: "app", port: 80), "/", "app"),
            ("http://app?x=1", .tcp(host: "app", port: 80), "/?x=1", "app"),
            ("http://[::1]:81/ws?v=2", .tcp(host: "::1", port: 81), "/ws?v=2", "[::1]:81"),
            ("unix:/run/app.sock", .unix(path: "/run/app.sock"), "/", "localhost"),
            ("unix:/run/app.sock#/events", .unix(path: "/run/app.sock"), "/events", "localhost"),
        ]
        for (text, endpoint, path, host) in cases {
            let parsed = try XCTUnwrap(HTTPBackendSettings.parseURL(text), text)
            XCTAssertEqual(parsed.0, endpoint, text)
            XCTAssertEqual(parsed.path, path, text)
            XCTAssertEqual(parsed.host, host, text)
            // What check-config prints reads back the same.
            let settings = HTTPBackendSettings(endpoint: parsed.0, path: parsed.path, hostHeader: parsed.host)
            XCTAssertEqual(HTTPBackendSettings.parseURL(settings.urlText)?.0, endpoint, text)
        }
        for bad in [
            "https://app/", "http://", "http://:80/", "http://app:0/", "http://app:65536/", "http://u@app/",
            "http://[::1]x/", "unix:relative.sock", "ws://app/",
        ] {
            XCTAssertNil(HTTPBackendSettings.parseURL(bad), bad)
        }
    }

    func testHostPortIsSharedByProxyUpstreams() {
        XCTAssertEqual(ProxySettings.parseUpstream("ws://[::1]:8080/x")?.0, .tcp(host: "::1", port: 8080))
        XCTAssertNil(HostPort.parse("host:http", defaultPort: 80))
        XCTAssertEqual(HostPort.parse("h", defaultPort: 443)?.port, 443)
    }
}

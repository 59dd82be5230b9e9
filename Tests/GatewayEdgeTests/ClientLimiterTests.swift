import GatewayCore
import NIOCore
import NIOHTTP1
import XCTest

@testable import GatewayEdge

final class ClientLimiterTests: XCTestCase {
    let a: [UInt8] = [192, 0, 2, 1]
    let b: [UInt8] = [192, 0, 2, 2]

    func testOverallAndPerAddressLimits() {
        let limiter = ClientLimiter(settings: LimitSettings(maxConnections: 3, maxConnectionsPerIP: 2))
        XCTAssertEqual(limiter.admit(a), .admitted)
        XCTAssertEqual(limiter.admit(a), .admitted)
        XCTAssertEqual(limiter.admit(a), .full(overall: false))
        XCTAssertEqual(limiter.admit(b), .admitted)
        XCTAssertEqual(limiter.admit(b), .full(overall: true))
        limiter.release(a)
        XCTAssertEqual(limiter.count(), 2)
        XCTAssertEqual(limiter.admit(b), .admitted)
    }

    func testRateRefillsOverTime() {
        let limiter = ClientLimiter(settings: LimitSettings(connectionsPerSecondPerIP: 2, connectionBurstPerIP: 2))
        let start = NIODeadline.now()
        XCTAssertEqual(limiter.admit(a, now: start), .admitted)
        XCTAssertEqual(limiter.admit(a, now: start), .admitted)
        XCTAssertEqual(limiter.admit(a, now: start), .tooFast(retryAfterSeconds: 1))
        XCTAssertEqual(limiter.admit(b, now: start), .admitted)
        XCTAssertEqual(limiter.admit(a, now: start + .milliseconds(500)), .admitted)
    }

    func testClientAddressThroughTrustedProxies() throws {
        let peer = try SocketAddress(ipAddress: "10.0.0.5", port: 443)
        let trusted = [IPNetwork(parsing: "10.0.0.0/8")!]
        var headers = HTTPHeaders([("X-Forwarded-For", "198.51.100.9, 203.0.113.4, 10.0.0.9")])
        XCTAssertEqual(ClientAddress.resolve(peer: peer, headers: headers, trusted: trusted).text, "203.0.113.4")
        // Untrusted peer: headers ignored.
        XCTAssertEqual(
            ClientAddress.resolve(
                peer: try SocketAddress(ipAddress: "192.0.2.1", port: 1),
                headers: headers,
                trusted: trusted
            ).text,
            "192.0.2.1"
        )
        headers = HTTPHeaders([("Forwarded", #"for=192.0.2.60;proto=http, for="[2001:db8::1]:4711""#)])
        XCTAssertEqual(ClientAddress.resolve(peer: peer, headers: headers, trusted: trusted).text, "2001:db8::1")
        headers = HTTPHeaders([("Forwarded", "for=unknown")])
        XCTAssertEqual(ClientAddress.resolve(peer: peer, headers: headers, trusted: trusted).text, "10.0.0.5")
    }
}

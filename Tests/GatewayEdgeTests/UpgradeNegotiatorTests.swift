import GatewayCore
import NIOHTTP1
import XCTest

@testable import GatewayEdge

final class UpgradeNegotiatorTests: XCTestCase {
    let routes = RouteTable([
        RouteConfiguration(name: "echo", path: "/echo", backend: .echo, subprotocols: ["v2", "v1"]),
        RouteConfiguration(
            name: "strict",
            path: "/strict",
            backend: .echo,
            subprotocols: ["v1"],
            requireSubprotocol: true
        ),
    ])

    func head(
        _ uri: String = "/echo",
        method: HTTPMethod = .GET,
        version: String = "13",
        key: String? = "dGhlIHNhbXBsZSBub25jZQ==",
        extra: [(String, String)] = []
    ) -> HTTPRequestHead {
        var headers: HTTPHeaders = [
            "Host": "localhost", "Upgrade": "websocket", "Connection": "keep-alive, Upgrade",
            "Sec-WebSocket-Version": version,
        ]
        if let key { headers.add(name: "Sec-WebSocket-Key", value: key) }
        headers.add(contentsOf: extra)
        return HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: headers)
    }

    func status(_ head: HTTPRequestHead) -> HTTPResponseStatus? {
        if case .failure(let refusal) = UpgradeNegotiator.negotiate(head, routes: routes) { return refusal.status }
        return nil
    }

    func testRecognisesUpgradeRequests() {
        XCTAssertTrue(UpgradeNegotiator.isUpgradeRequest(head()))
        XCTAssertFalse(
            UpgradeNegotiator.isUpgradeRequest(
                HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: ["Upgrade": "websocket"])
            )
        )
    }

    func testRefusals() {
        XCTAssertEqual(status(head("/missing")), .notFound)
        XCTAssertEqual(status(head(method: .POST)), .methodNotAllowed)
        XCTAssertEqual(status(head(version: "8")), .upgradeRequired)
        XCTAssertEqual(status(head(key: nil)), .badRequest)
        XCTAssertEqual(status(head(key: "abc")), .badRequest)
        // Two keys.
        XCTAssertEqual(status(head(extra: [("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")])), .badRequest)
        XCTAssertEqual(status(head("/strict", extra: [("Sec-WebSocket-Protocol", "v9")])), .badRequest)
        var old = head()
        old.version = .http1_0
        XCTAssertEqual(status(old), .badRequest)
    }

    /// RFC 8441: an extended CONNECT (as `HTTP2StreamCodec` passes it on) needs no key and is
    /// answered without Upgrade, Connection or an accept value; anything else on h2 is not one.
    func testExtendedConnectOnHTTP2() throws {
        func connect(_ fields: [(String, String)], method: HTTPMethod = .CONNECT) -> HTTPRequestHead {
            HTTPRequestHead(version: .http2, method: method, uri: "/echo", headers: HTTPHeaders(fields))
        }
        let asked = connect([
            ("host", "localhost"), ("sec-websocket-version", "13"), ("sec-websocket-protocol", "v1"),
            (HTTP2StreamCodec.protocolField, "websocket"),
        ])
        XCTAssertTrue(UpgradeNegotiator.isUpgradeRequest(asked))
        guard case .success(let acceptance) = UpgradeNegotiator.negotiate(asked, routes: routes) else {
            return XCTFail("refused")
        }
        XCTAssertTrue(acceptance.overHTTP2)
        XCTAssertEqual(acceptance.subprotocol, "v1")
        XCTAssertEqual(acceptance.responseHeaders.map(\.name), ["Sec-WebSocket-Protocol"])
        // Another protocol, a plain CONNECT, an Upgrade header on h2: not WebSocket requests.
        XCTAssertFalse(UpgradeNegotiator.isUpgradeRequest(connect([(HTTP2StreamCodec.protocolField, "webtransport")])))
        XCTAssertFalse(UpgradeNegotiator.isUpgradeRequest(connect([("host", "localhost")])))
        XCTAssertFalse(
            UpgradeNegotiator.isUpgradeRequest(
                connect([(HTTP2StreamCodec.protocolField, "websocket")], method: .GET)
            )
        )
        // The version is checked as on HTTP/1.1.
        XCTAssertEqual(
            status(
                connect([
                    ("host", "localhost"), ("sec-websocket-version", "8"),
                    (HTTP2StreamCodec.protocolField, "websocket"),
                ])
            ),
            .upgradeRequired
        )
    }

    func testAcceptancePicksTheRoutesPreferredSubprotocolAndAnswersTheKey() throws {
        guard
            case .success(let acceptance) = UpgradeNegotiator.negotiate(
                head("/echo?x=1", extra: [("Sec-WebSocket-Protocol", "v1, v2")]),
                routes: routes
            )
        else {
            return XCTFail("refused")
        }
        XCTAssertEqual(acceptance.subprotocol, "v2")
        XCTAssertEqual(acceptance.responseHeaders["Sec-WebSocket-Accept"], ["s3pPLMBiTxaQ9kYGzzhZRbK+xOo="])
        XCTAssertEqual(acceptance.responseHeaders["Sec-WebSocket-Protocol"], ["v2"])
        XCTAssertTrue(acceptance.responseHeaders["Sec-WebSocket-Extensions"].isEmpty)
    }
}

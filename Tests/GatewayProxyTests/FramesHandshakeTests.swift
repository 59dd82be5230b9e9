import GatewayCore
import GatewayWebSocket
import Logging
import NIOCore
import NIOEmbedded
import NIOWebSocket
import XCTest

@testable import GatewayProxy

/// The upstream leg of a `frames` proxy as a WebSocket client: its own handshake, and the checks
/// of the upstream's 101 (RFC 6455 §4.1) that refuse the client with 502 when they fail.
final class FramesHandshakeTests: XCTestCase {
    private let settings = ProxySettings(
        upstream: .tcp(host: "127.0.0.1", port: 9),
        path: "/ws",
        hostHeader: "backend",
        mode: .frames
    )

    private func request(
        subprotocols routeList: [String] = [],
        offered: String? = "chat.v1, bearer.abc, other"
    )
        -> UpgradeRequest
    {
        var headers: [(String, String)] = [
            ("host", "example.org"), ("sec-websocket-key", "client-key"), ("sec-websocket-version", "13"),
            ("sec-websocket-extensions", "permessage-deflate"), ("cookie", "c=1"),
        ]
        if let offered { headers.append(("sec-websocket-protocol", offered)) }
        var route = RouteConfiguration(name: "p", path: "/p", backend: .proxy(settings), subprotocols: routeList)
        route.auth = JWTSettings(secrets: ["s"], sources: [.protocol])
        return UpgradeRequest(
            connectionID: 1,
            route: route,
            target: "/p",
            headers: headers,
            peer: "127.0.0.1:4000",
            subprotocol: routeList.first { offered?.contains($0) ?? false },
            tlsVersion: nil
        )
    }

    func testTheRequestIsTheGatewaysOwnHandshake() {
        let text = ProxyRouteService.upstreamRequest(
            request(),
            settings: settings,
            frames: .init(key: "dGhlIHNhbXBsZSBub25jZQ==", subprotocols: ["chat.v1", "other"])
        )
        XCTAssertTrue(text.contains("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"), text)
        XCTAssertTrue(text.contains("Sec-WebSocket-Version: 13\r\n"))
        XCTAssertTrue(text.contains("Sec-WebSocket-Protocol: chat.v1, other\r\n"))
        XCTAssertFalse(text.contains("client-key"), "the client's key belongs to the client's leg")
        XCTAssertFalse(text.lowercased().contains("sec-websocket-extensions"), "the upstream leg is not compressed")
        XCTAssertTrue(text.contains("cookie: c=1\r\n"))
    }

    func testTheOfferIsTheClientsWithoutATokenOrTheRoutesSelection() {
        XCTAssertEqual(ProxyRouteService.subprotocolOffer(request()), ["chat.v1", "other"])
        XCTAssertEqual(ProxyRouteService.subprotocolOffer(request(subprotocols: ["chat.v1"])), ["chat.v1"])
        XCTAssertEqual(ProxyRouteService.subprotocolOffer(request(subprotocols: ["v9"])), [])
        XCTAssertEqual(ProxyRouteService.subprotocolOffer(request(offered: nil)), [])
    }

    private func verdict(answer: String, offered: [String] = ["chat.v1"]) throws -> (UpgradeVerdict, EmbeddedChannel) {
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let key = "dGhlIHNhbXBsZSBub25jZQ=="
        let head = ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" + answer + "\r\n")
        let verdict = ProxyRouteService.relay(
            channel,
            responseHead: head,
            firstFrames: ByteBuffer(bytes: [0x81, 0x02, 0x68, 0x69]),
            handshake: .init(key: key, subprotocols: offered),
            limits: WebSocketLimits(),
            settings: settings,
            logger: Logger(label: "test")
        )
        return (verdict, channel)
    }

    private let goodAccept = "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"

    func testAValidAnswerJoinsTheRelayAndNamesTheUpstreamsSubprotocol() throws {
        let (verdict, channel) = try verdict(answer: goodAccept + "Sec-WebSocket-Protocol: chat.v1\r\n")
        guard case .acceptAnswering(_, let subprotocol) = verdict else { return XCTFail("\(verdict)") }
        XCTAssertEqual(subprotocol, "chat.v1")
        XCTAssertTrue(channel.isActive)
        _ = try? channel.finish(acceptAlreadyClosed: true)
    }

    func testAWrongAcceptAnExtensionOrAnUnofferedSubprotocolIs502() throws {
        for answer in [
            "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n",
            "",
            goodAccept + "Sec-WebSocket-Extensions: permessage-deflate\r\n",
            goodAccept + "Sec-WebSocket-Protocol: chat.v2\r\n",
            goodAccept + "Sec-WebSocket-Protocol: chat.v1\r\nSec-WebSocket-Protocol: chat.v1\r\n",
        ] {
            let (verdict, channel) = try verdict(answer: answer)
            guard case .refuse(let status, _) = verdict else { return XCTFail("accepted: \(answer)") }
            XCTAssertEqual(status, 502, answer)
            XCTAssertFalse(channel.isActive, "the upstream connection is closed: \(answer)")
        }
    }
}

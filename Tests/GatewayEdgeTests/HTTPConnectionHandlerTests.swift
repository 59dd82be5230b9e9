import GatewayCore
import GatewayWebSocket
import Logging
import NIOCore
import NIOEmbedded
import NIOWebSocket
import XCTest

@testable import GatewayEdge

/// The HTTP side of a connection on an `EmbeddedChannel`, built as a listener builds it (request
/// guard, NIO's decoder and encoder, `HTTPConnectionHandler`): the HTTP/1.1 upgrade, each
/// refusal with its status, keep-alive, and what a drain does between and during requests.
final class HTTPConnectionHandlerTests: XCTestCase {
    private var channel: EmbeddedChannel!
    private var pipeline: ConnectionPipeline!

    private static let key = "dGhlIHNhbXBsZSBub25jZQ=="

    private func start(limits: LimitSettings = .init(), services: [String: any RouteService]? = nil) throws {
        let configuration = GatewayConfiguration(
            listeners: [ListenerConfiguration(name: "main", address: .tcp(host: "127.0.0.1", port: 0))],
            routes: [
                RouteConfiguration(name: "echo", path: "/echo", backend: .echo),
                RouteConfiguration(name: "gone", path: "/gone", backend: .echo),
            ],
            limits: limits
        )
        pipeline = ConnectionPipeline(
            configuration: configuration,
            services: services ?? ["echo": EchoRouteService()],
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "192.0.2.7", port: 40000)).wait()
        try pipeline.configure(channel)
        channel.pipeline.fireChannelActive()
    }

    override func tearDown() {
        if let channel {
            // A closed channel may have given back all its bytes already.
            XCTAssertTrue(try channel.finish(acceptAlreadyClosed: true).isClean)
        }
        channel = nil
        pipeline = nil
    }

    private func send(_ text: String) throws {
        try channel.writeInbound(ByteBuffer(string: text))
        channel.embeddedEventLoop.run()
    }

    /// Everything written back so far, as text.
    private func answer() throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    private func upgradeRequest(path: String = "/echo", version: String = "13") -> String {
        "GET \(path) HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: \(Self.key)\r\nSec-WebSocket-Version: \(version)\r\n\r\n"
    }

    func testAnUpgradeAnswers101AndTheSessionEchoes() throws {
        try start()
        try send(upgradeRequest())
        let head = try answer()
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"), head.debugDescription)
        XCTAssertTrue(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), head)
        XCTAssertEqual(pipeline.state.webSocketSessions, 1)
        XCTAssertEqual(pipeline.sessions.count, 1)
        // A masked "hi" comes back unmasked.
        try channel.writeInbound(ByteBuffer(bytes: [0x81, 0x82, 1, 2, 3, 4, 0x68 ^ 1, 0x69 ^ 2]))
        channel.embeddedEventLoop.run()
        var echoed = try XCTUnwrap(channel.readOutbound(as: ByteBuffer.self))
        XCTAssertEqual(echoed.readBytes(length: echoed.readableBytes), [0x81, 0x02, 0x68, 0x69])
        // The client closes; the session answers and ends.
        try channel.writeInbound(ByteBuffer(bytes: [0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8]))
        channel.embeddedEventLoop.run()
        var close = try XCTUnwrap(channel.readOutbound(as: ByteBuffer.self))
        XCTAssertEqual(close.readBytes(length: 4), [0x88, 0x02, 0x03, 0xE8])
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(pipeline.state.webSocketSessions, 0)
        XCTAssertEqual(pipeline.sessions.count, 0)
    }

    func testEachRefusalHasItsStatus() throws {
        let cases: [(request: String, status: String)] = [
            ("GET /nowhere HTTP/1.1\r\nHost: gw\r\n\r\n", "404 Not Found"),
            ("POST /echo HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n", "405 Method Not Allowed"),
            ("GET /echo HTTP/1.1\r\nHost: gw\r\n\r\n", "426 Upgrade Required"),
            (upgradeRequest(version: "8"), "426 Upgrade Required"),
            (upgradeRequest(path: "/gone"), "503 Service Unavailable"),
            (
                "GET /echo HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    + "Sec-WebSocket-Version: 13\r\n\r\n",
                "400 Bad Request"
            ),
        ]
        for (request, status) in cases {
            try start()
            try send(request)
            let text = try answer()
            XCTAssertTrue(text.hasPrefix("HTTP/1.1 \(status)\r\n"), "\(request.prefix(40)): \(text.debugDescription)")
            XCTAssertEqual(pipeline.state.webSocketSessions, 0)
            tearDown()
        }
    }

    func testTheConnectionLimitAnswers503WithRetryAfter() throws {
        try start(limits: LimitSettings(maxConnections: 1))
        try send(upgradeRequest())
        XCTAssertTrue(try answer().hasPrefix("HTTP/1.1 101 "))
        // A second connection while the first holds the gateway's only slot.
        let second = EmbeddedChannel()
        try second.connect(to: SocketAddress(ipAddress: "192.0.2.8", port: 40001)).wait()
        try pipeline.configure(second)
        second.pipeline.fireChannelActive()
        try second.writeInbound(ByteBuffer(string: upgradeRequest()))
        second.embeddedEventLoop.run()
        var text = ""
        while let buffer = try second.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"), text)
        XCTAssertTrue(text.contains("Retry-After: 5\r\n"), text)
        XCTAssertEqual(pipeline.sessions.count, 1, "the first one only")
        XCTAssertTrue(try second.finish(acceptAlreadyClosed: true).isClean)
    }

    func testKeepAliveThenADrainBetweenRequestsCloses() throws {
        try start()
        for _ in 0..<2 {
            try send("GET /livez HTTP/1.1\r\nHost: gw\r\n\r\n")
            XCTAssertTrue(try answer().hasPrefix("HTTP/1.1 200 OK\r\n"))
            XCTAssertTrue(channel.isActive, "kept alive")
        }
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        XCTAssertFalse(channel.isActive, "idle: closed at once")
    }

    func testADrainDuringARequestAnswersItWithConnectionClose() throws {
        try start()
        // The head is in; the body (and so the request's end) is not.
        try send("GET /livez HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\n\r\nab")
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        XCTAssertTrue(channel.isActive, "the request is answered first")
        try send("c")
        let text = try answer()
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 200 OK\r\n"), text)
        XCTAssertTrue(text.lowercased().contains("connection: close\r\n"), text)
        XCTAssertFalse(channel.isActive)
    }

    func testADrainWhileTheRouteDecidesAbandonsTheUpgradeWith503() throws {
        let route = DeferredRouteService()
        try start(services: ["echo": route])
        try send(upgradeRequest())
        XCTAssertEqual(try answer(), "", "the route has not answered")
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        let application = AbandonedApplication()
        route.completion?(.accept(application))
        channel.embeddedEventLoop.run()
        let text = try answer()
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"), text)
        XCTAssertTrue(application.abandoned, "the route lets go of what it holds for it")
        XCTAssertEqual(pipeline.sessions.count, 0)
        XCTAssertFalse(channel.isActive)
    }

    func testTheRoutesRefusalIsItsStatus() throws {
        let route = DeferredRouteService()
        try start(services: ["echo": route])
        try send(upgradeRequest())
        route.completion?(.refuse(status: 403, message: "not you"))
        channel.embeddedEventLoop.run()
        let text = try answer()
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 403 Forbidden\r\n"), text)
        XCTAssertTrue(text.hasSuffix("not you\n") || text.hasSuffix("not you"), text)
        XCTAssertFalse(channel.isActive)
    }
}

/// A route that answers when the test says so (a worker asked first, a token being checked).
private final class DeferredRouteService: RouteService, @unchecked Sendable {
    var completion: ((UpgradeVerdict) -> Void)?

    func prepare(_ request: UpgradeRequest, eventLoop: any EventLoop, completion: @escaping (UpgradeVerdict) -> Void) {
        self.completion = completion
    }

    var isReady: Bool { true }
}

private final class AbandonedApplication: WebSocketApplication {
    var abandoned = false
    func sessionDidOpen(_ session: WebSocketSessionHandler) {}
    func session(_ session: WebSocketSessionHandler, didReceive message: WebSocketMessage) {}
    func sessionDidClose(_ session: WebSocketSessionHandler, code: WebSocketErrorCode?) {}
    func upgradeAbandoned() { abandoned = true }
}

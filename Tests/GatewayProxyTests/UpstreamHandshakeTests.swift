import GatewayCore
import GatewayWebSocket
import NIOCore
import NIOEmbedded
import XCTest

@testable import GatewayProxy

/// The upstream's side of a proxied upgrade: the request sent, and every kind of answer.
final class UpstreamHandshakeTests: XCTestCase {
    private var channel: EmbeddedChannel!
    private var promise: EventLoopPromise<UpstreamHandshake.Outcome>!

    override func setUp() {
        channel = EmbeddedChannel()
        promise = channel.eventLoop.makePromise()
    }

    override func tearDown() {
        promise.succeed(.unreachable)
        _ = try? channel.finish(acceptAlreadyClosed: true)
    }

    private func start(timeout: TimeAmount = .seconds(10)) throws -> String {
        try channel.pipeline.syncOperations.addHandler(
            UpstreamHandshake(request: "GET / HTTP/1.1\r\n\r\n", promise: promise, timeout: timeout)
        )
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return try XCTUnwrap(channel.readOutbound(as: ByteBuffer.self)).getString(at: 0, length: 18) ?? ""
    }

    private func outcome() throws -> UpstreamHandshake.Outcome {
        (channel.eventLoop as! EmbeddedEventLoop).run()
        return try promise.futureResult.wait()
    }

    func testA101InPiecesUpgradesAndKeepsTheFramesBehindIt() throws {
        XCTAssertEqual(try start(), "GET / HTTP/1.1\r\n\r\n")
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r"))
        try channel.writeInbound(ByteBuffer(bytes: Array("\n\r\n".utf8) + [0x81, 0x02, 0x68, 0x69]))
        guard case .upgraded(_, let head, let frames) = try outcome() else { return XCTFail("not upgraded") }
        XCTAssertTrue(String(buffer: head).hasSuffix("websocket\r\n\r\n"))
        XCTAssertEqual(frames.readableBytes, 4)
        XCTAssertTrue(channel.isActive)
    }

    func testARefusalKeepsItsStatusOrBecomes502() throws {
        _ = try start()
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 403 Forbidden\r\n\r\n"))
        guard case .refused(403, let line) = try outcome() else { return XCTFail("403 expected") }
        XCTAssertEqual(line, "HTTP/1.1 403 Forbidden")
        XCTAssertFalse(channel.isActive)
    }

    func testARedirectIsA502() throws {
        _ = try start()
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 302 Found\r\n\r\n"))
        guard case .refused(502, _) = try outcome() else { return XCTFail("502 expected") }
    }

    func testNotHTTPIsMalformed() throws {
        _ = try start()
        try channel.writeInbound(ByteBuffer(string: "SSH-2.0-OpenSSH\r\n\r\n"))
        guard case .malformed = try outcome() else { return XCTFail("malformed expected") }
    }

    func testAHeadOver16KiBIsMalformed() throws {
        _ = try start()
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 101 OK\r\nX: " + String(repeating: "a", count: 17000)))
        guard case .malformed = try outcome() else { return XCTFail("malformed expected") }
    }

    func testNoAnswerInTimeTimesOut() throws {
        _ = try start(timeout: .seconds(3))
        (channel.eventLoop as! EmbeddedEventLoop).advanceTime(by: .seconds(3))
        guard case .timedOut = try outcome() else { return XCTFail("timeout expected") }
    }

    func testTheUpstreamRequestForwardsTheClientAndDropsHopByHopHeaders() {
        let route = RouteConfiguration(
            name: "p",
            path: "/p",
            backend: .proxy(ProxySettings(upstream: .tcp(host: "127.0.0.1", port: 9), path: "/", hostHeader: "up"))
        )
        var request = UpgradeRequest(
            connectionID: 1,
            route: route,
            target: "/p?x=1",
            headers: [
                ("host", "example.org"), ("connection", "upgrade"), ("x-forwarded-for", "6.6.6.6"),
                ("sec-websocket-key", "abc"), ("cookie", "c=1"),
            ],
            peer: "[::1]:4000",
            subprotocol: nil,
            tlsVersion: "tlsv13"
        )
        request.claims = nil
        let text = ProxyRouteService.upstreamRequest(
            request,
            settings: ProxySettings(upstream: .tcp(host: "127.0.0.1", port: 9), path: "/ws", hostHeader: "backend")
        )
        XCTAssertTrue(text.hasPrefix("GET /ws?x=1 HTTP/1.1\r\nHost: backend\r\n"), text)
        XCTAssertTrue(text.contains("sec-websocket-key: abc\r\n"))
        XCTAssertTrue(text.contains("cookie: c=1\r\n"))
        XCTAssertFalse(text.contains("6.6.6.6"), "a client's own X-Forwarded-For is not passed on")
        XCTAssertTrue(text.contains("Forwarded: for=\"[::1]\";proto=https;host=\"example.org\"\r\n"), text)
        XCTAssertTrue(text.contains("X-Forwarded-For: ::1\r\n"))
        XCTAssertTrue(text.hasSuffix("\r\n\r\n"))
    }

    /// A Host that closes the quoted `host=` early would hand the upstream a `for=` of the
    /// client's choosing: it is escaped as RFC 7239 asks.
    func testAHostCannotAddForwardedElements() {
        let route = RouteConfiguration(name: "p", path: "/p", backend: .echo)
        let request = UpgradeRequest(
            connectionID: 1,
            route: route,
            target: "/p",
            headers: [("host", #"a", for=6.6.6.6;host="b\"#)],
            peer: "10.0.0.1:4000",
            subprotocol: nil,
            tlsVersion: nil
        )
        let text = ProxyRouteService.upstreamRequest(
            request,
            settings: ProxySettings(upstream: .tcp(host: "127.0.0.1", port: 9), path: "/ws", hostHeader: "backend")
        )
        XCTAssertTrue(
            text.contains(#"Forwarded: for=10.0.0.1;proto=http;host="a\", for=6.6.6.6;host=\"b\\""# + "\r\n"),
            text
        )
    }
}

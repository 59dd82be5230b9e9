import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP1
import NIOHTTP2
import XCTest

@testable import GatewayEdge

/// The stream codec on an `EmbeddedChannel`: HTTP/2 frames in, HTTP/1 parts out, and after an
/// extended CONNECT the tunnel framer that turns DATA into the WebSocket's bytes.
final class HTTP2StreamCodecTests: XCTestCase {
    func headers(_ fields: [(String, String)], endStream: Bool = false) -> HTTP2Frame.FramePayload {
        .headers(.init(headers: HPACKHeaders(fields), endStream: endStream))
    }

    func data(_ text: String, endStream: Bool = false) -> HTTP2Frame.FramePayload {
        .data(.init(data: .byteBuffer(ByteBuffer(string: text)), endStream: endStream))
    }

    func testAPlainRequestIsAHeadAndAnEndAndItsAnswerFrames() throws {
        let codec = HTTP2StreamCodec()
        let channel = EmbeddedChannel(handler: codec)
        try channel.writeInbound(
            headers(
                [
                    (":method", "GET"), (":path", "/livez"), (":scheme", "https"), (":authority", "gw:443"),
                    ("accept", "*/*"),
                ],
                endStream: true
            )
        )
        guard case .head(let head) = try channel.readInbound(as: HTTPServerRequestPart.self) else {
            return XCTFail("no head")
        }
        XCTAssertEqual(head.method, .GET)
        XCTAssertEqual(head.uri, "/livez")
        XCTAssertEqual(head.version, .http2)
        XCTAssertEqual(head.headers["host"], ["gw:443"])
        XCTAssertEqual(head.headers["accept"], ["*/*"])
        XCTAssertFalse(head.headers.contains { $0.name.hasPrefix(":") })
        guard case .end = try channel.readInbound(as: HTTPServerRequestPart.self) else { return XCTFail("no end") }

        let answer = HTTPResponseHead(
            version: .http1_1,
            status: .ok,
            headers: ["Content-Length": "3", "Connection": "close", "Cache-Control": "no-store"]
        )
        try channel.writeOutbound(HTTPServerResponsePart.head(answer))
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        guard case .headers(let sent) = try channel.readOutbound(as: HTTP2Frame.FramePayload.self) else {
            return XCTFail("no HEADERS")
        }
        XCTAssertEqual(sent.headers.first?.name, ":status")
        XCTAssertEqual(sent.headers.first(name: ":status"), "200")
        XCTAssertEqual(sent.headers.first(name: "cache-control"), "no-store")
        XCTAssertNil(sent.headers.first(name: "connection"), "connection-specific fields are not HTTP/2's")
        guard case .data(let end) = try channel.readOutbound(as: HTTP2Frame.FramePayload.self) else {
            return XCTFail("no DATA")
        }
        XCTAssertTrue(end.endStream)
    }

    func testExtendedConnectBecomesATunnelKeepingWhatCameEarly() throws {
        let codec = HTTP2StreamCodec()
        let channel = EmbeddedChannel(handler: codec)
        // Active, as a stream is: closing an inactive channel has nothing to end.
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(
            headers([
                (":method", "CONNECT"), (":protocol", "websocket"), (":path", "/echo"), (":scheme", "https"),
                (":authority", "gw"), ("sec-websocket-version", "13"),
            ])
        )
        guard case .head(let head) = try channel.readInbound(as: HTTPServerRequestPart.self) else {
            return XCTFail("no head")
        }
        XCTAssertEqual(head.method, .CONNECT)
        XCTAssertEqual(head.headers[HTTP2StreamCodec.protocolField], ["websocket"])
        XCTAssertTrue(UpgradeNegotiator.isExtendedConnect(head))
        // The request is complete at once: what follows is the tunnel's.
        guard case .end = try channel.readInbound(as: HTTPServerRequestPart.self) else { return XCTFail("no end") }
        try channel.writeInbound(data("early"))
        XCTAssertNil(try channel.readInbound(as: HTTPServerRequestPart.self))

        let context = try channel.pipeline.syncOperations.context(handler: codec)
        let tunnel = try codec.beginTunnel(context: context)
        // Held until the session is above the tunnel.
        XCTAssertNil(try channel.readInbound(as: ByteBuffer.self))
        tunnel.open(context: try channel.pipeline.syncOperations.context(handler: tunnel))
        XCTAssertEqual(try channel.readInbound(as: ByteBuffer.self), ByteBuffer(string: "early"))
        try channel.writeInbound(data("frame bytes"))
        XCTAssertEqual(try channel.readInbound(as: ByteBuffer.self), ByteBuffer(string: "frame bytes"))
        try channel.writeOutbound(ByteBuffer(string: "to the client"))
        guard case .data(let out) = try channel.readOutbound(as: HTTP2Frame.FramePayload.self),
            case .byteBuffer(let bytes) = out.data
        else {
            return XCTFail("no DATA")
        }
        XCTAssertEqual(bytes, ByteBuffer(string: "to the client"))
        XCTAssertFalse(out.endStream)
        // Closing ends the gateway's side with END_STREAM first (an orderly close, RFC 8441 §5).
        channel.close(promise: nil)
        guard case .data(let last) = try channel.readOutbound(as: HTTP2Frame.FramePayload.self) else {
            return XCTFail("no END_STREAM")
        }
        XCTAssertTrue(last.endStream)
    }

    /// More than one flow-control window sent before the answer refuses the stream.
    func testEarlyTunnelBytesAreBounded() throws {
        let channel = EmbeddedChannel(handler: HTTP2StreamCodec())
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(
            headers([(":method", "CONNECT"), (":protocol", "websocket"), (":path", "/echo"), (":scheme", "https")])
        )
        _ = try channel.readInbound(as: HTTPServerRequestPart.self)
        _ = try channel.readInbound(as: HTTPServerRequestPart.self)
        try channel.writeInbound(data(String(repeating: "x", count: HTTP2StreamCodec.earlyTunnelBytes)))
        XCTAssertTrue(channel.isActive)
        try channel.writeInbound(data("y"))
        XCTAssertFalse(channel.isActive)
    }

    func testAClassicConnectIsAnsweredNotImplemented() throws {
        let channel = EmbeddedChannel(handler: HTTP2StreamCodec())
        try channel.writeInbound(headers([(":method", "CONNECT"), (":authority", "example.com:443")]))
        XCTAssertNil(try channel.readInbound(as: HTTPServerRequestPart.self))
        guard case .headers(let sent) = try channel.readOutbound(as: HTTP2Frame.FramePayload.self) else {
            return XCTFail("no answer")
        }
        XCTAssertEqual(sent.headers.first(name: ":status"), "501")
    }
}

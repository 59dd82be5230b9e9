import GatewayHub
import GatewayWebSocket
import NIOCore
import XCTest

@testable import GatewayCluster

/// What nodes say to each other through Redis (docs/cluster.md, "On the wire").
final class ClusterWireTests: XCTestCase {
    func testAPublishRoundTripsWithItsKindAndOrigin() throws {
        for kind in [WebSocketMessage.Kind.text, .binary] {
            let message = WebSocketMessage(kind: kind, data: ByteBuffer(bytes: [0, 1, 2, 0xFF]))
            let encoded = ClusterWire.encodePublish(HubMessage(message), origin: 513)
            XCTAssertEqual(Array(encoded.readableBytesView.prefix(5)), [0x57, 1, kind == .text ? 1 : 2, 2, 1])
            let decoded = try XCTUnwrap(ClusterWire.decodePublish(encoded))
            XCTAssertEqual(decoded.origin, 513)
            XCTAssertEqual(decoded.message, HubMessage(message))
        }
    }

    func testAHubEventStaysOneAcrossNodes() throws {
        let event = HubMessage.event(ByteBuffer(string: "{\"op\":\"message\"}"))
        let encoded = ClusterWire.encodePublish(event, origin: 1)
        XCTAssertEqual(encoded.getInteger(at: 2, as: UInt8.self), 3)
        let decoded = try XCTUnwrap(ClusterWire.decodePublish(encoded)).message
        XCTAssertEqual(decoded.form, .event)
        XCTAssertEqual(decoded.kind, .text)
    }

    func testAPublishInAnotherFormatIsRefused() {
        XCTAssertNil(ClusterWire.decodePublish(ByteBuffer(bytes: [0x57, 2, 1, 0, 1])), "version 2")
        XCTAssertNil(ClusterWire.decodePublish(ByteBuffer(bytes: [0x57, 1, 4, 0, 1])), "kind 4")
        XCTAssertNil(ClusterWire.decodePublish(ByteBuffer(bytes: [0x58, 1, 1, 0, 1])), "not W")
        XCTAssertNil(ClusterWire.decodePublish(ByteBuffer(bytes: [0x57, 1, 1, 0])), "cut short")
    }

    func testACommandRoundTrips() throws {
        var command = ClusterWire.Command(op: .send)
        command.connection = (3 << 48) | 77
        command.kind = "text"
        command.body = ClusterWire.base64(ByteBuffer(string: "hé"))
        let decoded = try XCTUnwrap(ClusterWire.Command.decode(command.encoded()))
        XCTAssertEqual(decoded.op, .send)
        XCTAssertEqual(decoded.connection, (3 << 48) | 77)
        XCTAssertEqual(ClusterWire.bytes(base64: decoded.body), Array("hé".utf8))
        XCTAssertNil(ClusterWire.Command.decode(ByteBuffer(string: "{\"op\":\"explode\"}")))
        XCTAssertNil(ClusterWire.bytes(base64: "not base64!"))
    }

    /// What the history script publishes: `H`, kind, offset, `:`, epoch, `:`, payload (which
    /// may hold colons and any byte).
    func testARecordedPublishCarriesItsOffset() throws {
        var buffer = ByteBuffer(string: "H2" + "42:0123456789abcdef:")
        buffer.writeBytes([0x3A, 0, 0xFF])
        let (offset, epoch, message) = try XCTUnwrap(ClusterNode.decodeRecorded(buffer))
        XCTAssertEqual(offset, 42)
        XCTAssertEqual(epoch, "0123456789abcdef")
        XCTAssertEqual(message, HubMessage(.binary([0x3A, 0, 0xFF])))
        let event = try XCTUnwrap(ClusterNode.decodeRecorded(ByteBuffer(string: "H37:e:{\"op\":\"message\"}")))
        XCTAssertEqual(event.message.form, .event)
        XCTAssertNil(ClusterNode.decodeRecorded(ByteBuffer(string: "H4x:e:p")))
        XCTAssertNil(ClusterNode.decodeRecorded(ByteBuffer(string: "H1x:e:p")))
        XCTAssertNil(ClusterNode.decodeRecorded(ByteBuffer(string: "H17")))
    }
}

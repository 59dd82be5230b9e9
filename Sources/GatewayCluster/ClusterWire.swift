import GatewayHub
import GatewayWebSocket
import NIOCore
import NIOWebSocket

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What travels between nodes through Redis (docs/cluster.md, "On the wire").
enum ClusterWire {
    /// A topic publish: `W`, version 1, kind (1 text, 2 binary, 3 text that is already a hub
    /// `message` event), the origin's node number (u16, big-endian), then the payload as the
    /// publisher gave it.
    static func encodePublish(_ message: HubMessage, origin: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(5 + message.data.readableBytes)
        buffer.writeInteger(UInt8(ascii: "W"))
        buffer.writeInteger(UInt8(1))
        buffer.writeInteger(UInt8(message.isEvent ? 3 : message.kind == .text ? 1 : 2))
        buffer.writeInteger(UInt16(origin))
        buffer.writeImmutableBuffer(message.data)
        return buffer
    }

    static func decodePublish(_ buffer: ByteBuffer) -> (origin: Int, message: HubMessage)? {
        var buffer = buffer
        guard buffer.readInteger(as: UInt8.self) == UInt8(ascii: "W"), buffer.readInteger(as: UInt8.self) == 1,
            let kind = buffer.readInteger(as: UInt8.self), (1...3).contains(kind),
            let origin = buffer.readInteger(as: UInt16.self)
        else { return nil }
        let message = WebSocketMessage(kind: kind == 2 ? .binary : .text, data: buffer)
        return (Int(origin), HubMessage(message, form: kind == 3 ? .event : .raw))
    }

    /// A close of every subscriber of a reserved topic (a user's or a tag's connections), on
    /// the topic's channel: `W`, version 1, kind 4, origin, code, reason.
    static func encodeClose(code: UInt16, reason: String, origin: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(ascii: "W"))
        buffer.writeInteger(UInt8(1))
        buffer.writeInteger(UInt8(4))
        buffer.writeInteger(UInt16(origin))
        buffer.writeInteger(code)
        buffer.writeString(reason)
        return buffer
    }

    static func decodeClose(_ buffer: ByteBuffer) -> (origin: Int, code: UInt16, reason: String)? {
        var buffer = buffer
        guard buffer.readInteger(as: UInt8.self) == UInt8(ascii: "W"), buffer.readInteger(as: UInt8.self) == 1,
            buffer.readInteger(as: UInt8.self) == 4, let origin = buffer.readInteger(as: UInt16.self),
            let code = buffer.readInteger(as: UInt16.self)
        else { return nil }
        return (Int(origin), code, buffer.readString(length: buffer.readableBytes) ?? "")
    }

    /// A command on a node's own channel (JSON): an admin request and its response, or a
    /// worker's send or close for a connection that node holds.
    struct Command: Codable, Sendable {
        enum Operation: String, Codable, Sendable { case request, response, send, close }
        var op: Operation
        /// Matches a response to its request.
        var request: UInt64?
        /// The node number to answer on.
        var from: Int?
        var method: String?
        var uri: String?
        /// Request and response bodies, and sent messages, base64.
        var body: String?
        var status: Int?
        var headers: [[String]]?
        var connection: UInt64?
        var kind: String?
        var code: UInt16?
        var reason: String?

        init(op: Operation) { self.op = op }

        func encoded() -> ByteBuffer {
            ByteBuffer(bytes: (try? JSONEncoder().encode(self)) ?? Data())
        }

        static func decode(_ buffer: ByteBuffer) -> Command? {
            try? JSONDecoder().decode(Command.self, from: Data(buffer.readableBytesView))
        }
    }

    static func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }
    static func base64(_ buffer: ByteBuffer) -> String { Data(buffer.readableBytesView).base64EncodedString() }
    static func bytes(base64 text: String?) -> [UInt8]? {
        guard let text else { return [] }
        return Data(base64Encoded: text).map(Array.init)
    }
}

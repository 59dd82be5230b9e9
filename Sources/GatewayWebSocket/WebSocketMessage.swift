import NIOCore

/// A complete WebSocket message: reassembled, decompressed, and (for text) validated UTF-8.
public struct WebSocketMessage: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case text, binary }
    public var kind: Kind
    public var data: ByteBuffer

    public init(kind: Kind, data: ByteBuffer) {
        self.kind = kind
        self.data = data
    }

    public static func text(_ string: String) -> WebSocketMessage {
        WebSocketMessage(kind: .text, data: ByteBuffer(string: string))
    }

    public static func binary(_ bytes: [UInt8]) -> WebSocketMessage {
        WebSocketMessage(kind: .binary, data: ByteBuffer(bytes: bytes))
    }
}

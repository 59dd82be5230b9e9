import NIOCore

/// A complete WebSocket message: reassembled, decompressed, and (for text) validated UTF-8.
public struct WebSocketMessage: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case text, binary }
    public var kind: Kind
    public var data: ByteBuffer
    /// Set on a message bound for many sessions (a hub publish): they share its compressed form.
    public var sharedCompression: SharedCompression?

    public init(kind: Kind, data: ByteBuffer, sharedCompression: SharedCompression? = nil) {
        self.kind = kind
        self.data = data
        self.sharedCompression = sharedCompression
    }

    /// A message for many sessions: its payload buffer is shared by all of them, and so is its
    /// compressed form where they can share one.
    public static func fanOut(kind: Kind, data: ByteBuffer) -> WebSocketMessage {
        WebSocketMessage(kind: kind, data: data, sharedCompression: SharedCompression())
    }

    public static func text(_ string: String) -> WebSocketMessage {
        WebSocketMessage(kind: .text, data: ByteBuffer(string: string))
    }

    public static func binary(_ bytes: [UInt8]) -> WebSocketMessage {
        WebSocketMessage(kind: .binary, data: ByteBuffer(bytes: bytes))
    }

    /// Equal when kind and bytes are: the compression cache is not part of the message.
    public static func == (lhs: WebSocketMessage, rhs: WebSocketMessage) -> Bool {
        lhs.kind == rhs.kind && lhs.data == rhs.data
    }
}

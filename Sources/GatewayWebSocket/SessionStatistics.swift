import NIOCore
import NIOWebSocket

/// Counters of one session, reported in its access-log line.
public struct SessionStatistics: Sendable, Equatable {
    public var messagesIn = 0
    public var messagesOut = 0
    public var bytesIn = 0
    public var bytesOut = 0
    /// Pushed messages the overflow policy did not deliver.
    public var messagesDropped = 0
    /// The close code we sent, if any.
    public var closeCodeSent: WebSocketErrorCode?
    /// The close code the client sent, if any.
    public var closeCodeReceived: WebSocketErrorCode?
    /// Who started the close: "client", "server", or nil when TCP ended without a close handshake.
    public var closedBy: String?
    public init() {}
}

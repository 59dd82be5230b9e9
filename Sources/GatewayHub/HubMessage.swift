import GatewayWebSocket
import NIOCore

/// A message as the hub carries it: the WebSocket message and the form it was made in. A hub
/// client's publish (and the admin API's with `data`) is already a hub `message` event, which
/// hub-route clients get as it is; every other publish reaches them wrapped in one
/// (docs/hub-protocol.md). The form travels with the message through history, the cluster's
/// wire and the log, so the WebSocket layer never needs to know about the hub's protocol.
public struct HubMessage: Sendable, Equatable {
    public enum Form: Sendable, Equatable {
        /// As a worker, an HTTP backend or the admin API's `text`/`binary` gave it.
        case raw
        /// Already a hub `message` event (text).
        case event
    }

    public var message: WebSocketMessage
    public var form: Form

    public init(_ message: WebSocketMessage, form: Form = .raw) {
        self.message = message
        self.form = form
    }

    /// A hub `message` event's bytes.
    public static func event(_ data: ByteBuffer) -> HubMessage {
        HubMessage(WebSocketMessage(kind: .text, data: data), form: .event)
    }

    public var isEvent: Bool { form == .event }
    public var data: ByteBuffer { message.data }
    public var kind: WebSocketMessage.Kind { message.kind }
}

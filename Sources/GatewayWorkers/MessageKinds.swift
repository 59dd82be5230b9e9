import GatewayWebSocket
import WorkerProtocol

/// A message's kind in the worker protocol and in a WebSocket session: one mapping, both ways.
extension WorkerFrame.MessageKind {
    init(_ kind: WebSocketMessage.Kind) {
        switch kind {
        case .text: self = .text
        case .binary: self = .binary
        }
    }
}

extension WebSocketMessage.Kind {
    init(_ kind: WorkerFrame.MessageKind) {
        switch kind {
        case .text: self = .text
        case .binary: self = .binary
        }
    }
}

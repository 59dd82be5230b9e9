import GatewayCore
import GatewayWebSocket
import NIOCore

/// A worker route's auto-responses (`worker.auto_response`): a text message exactly equal to a
/// configured request is answered by the gateway with its response, so an application-level
/// heartbeat neither wakes a hibernated route nor costs a worker a round trip.
struct AutoResponder: Sendable {
    private let answers: [String: WebSocketMessage]
    /// The requests' byte counts: most messages are turned away without making a string.
    private let lengths: Set<Int>

    /// Nil when the route configures none (the per-message path then checks one optional).
    init?(_ responses: [WorkerSettings.AutoResponse]) {
        guard !responses.isEmpty else { return nil }
        var answers: [String: WebSocketMessage] = [:]
        for pair in responses {
            answers[pair.request] = WebSocketMessage(kind: .text, data: ByteBuffer(string: pair.response))
        }
        self.answers = answers
        self.lengths = Set(responses.map(\.request.utf8.count))
    }

    /// The answer to `message`, if the gateway gives it.
    func response(to message: WebSocketMessage) -> WebSocketMessage? {
        guard message.kind == .text, lengths.contains(message.data.readableBytes) else { return nil }
        return answers[String(buffer: message.data)]
    }
}

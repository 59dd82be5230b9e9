import NIOWebSocket

/// What a route does with a session's messages. Called on the session's event loop, one call at
/// a time; an implementation may be shared by many sessions.
public protocol WebSocketApplication: AnyObject {
    func sessionDidOpen(_ session: WebSocketSessionHandler)
    func session(_ session: WebSocketSessionHandler, didReceive message: WebSocketMessage)
    /// `code` is the code the session closed with (sent or received), nil when TCP just ended.
    func sessionDidClose(_ session: WebSocketSessionHandler, code: WebSocketErrorCode?)
    /// The route accepted, but the client went away before the upgrade completed: no session
    /// will ever open.
    func upgradeAbandoned()
    /// The client started or stopped taking what is written to it (`session.isWritable`): a
    /// relay that feeds it from another connection reads that one only while it does.
    func sessionWritabilityChanged(_ session: WebSocketSessionHandler)
    /// A message addressed to this connection from elsewhere — by its id, its user or a tag
    /// (the admin API, a worker, an `http` route's app) — in the form its client reads. Most
    /// routes pass it on as it is; a hub route's clients read nothing but JSON events.
    func addressedMessage(_ message: WebSocketMessage) -> WebSocketMessage
}

extension WebSocketApplication {
    public func upgradeAbandoned() {}
    public func sessionWritabilityChanged(_ session: WebSocketSessionHandler) {}
    public func addressedMessage(_ message: WebSocketMessage) -> WebSocketMessage { message }
}

/// Sends every message back with its type.
public final class EchoApplication: WebSocketApplication, Sendable {
    public init() {}
    public func sessionDidOpen(_ session: WebSocketSessionHandler) {}
    public func session(_ session: WebSocketSessionHandler, didReceive message: WebSocketMessage) {
        session.send(message)
    }
    public func sessionDidClose(_ session: WebSocketSessionHandler, code: WebSocketErrorCode?) {}
}

import GatewayCore
import GatewayWebSocket
import NIOWebSocket

/// Users and tags as the hub sees them: a connection with user `alice` is subscribed to the
/// reserved topic `$user:alice`, one with tag `room-1` to `$tag:room-1`. A send to a user or a
/// tag is then a publish, and a close a `closeSubscribers`, which reach every node of a cluster
/// the way any publish does; a user's presence (online, tab count) is the topic's presence.
///
/// The session directory keeps who is who; this follows its changes (and its closes) with
/// subscriptions, whatever the route's kind.
public final class ConnectionIdentities: Sendable {
    public let hub: Hub
    public let directory: SessionDirectory

    public init(hub: Hub, directory: SessionDirectory) {
        self.hub = hub
        self.directory = directory
        directory.setIdentityObserver { [hub, directory] entry, before, after in
            for topic in Self.topics(of: before).subtracting(Self.topics(of: after)) {
                hub.unsubscribe(entry.id, from: topic)
            }
            for topic in Self.topics(of: after).subtracting(Self.topics(of: before)) {
                hub.subscribe(EntrySubscriber(entry: entry, directory: directory), to: topic)
            }
        }
    }

    static func topics(of identity: SessionDirectory.Identity) -> Set<String> {
        var topics = Set(identity.tags.map(Hub.tagTopic))
        if let user = identity.user { topics.insert(Hub.userTopic(user)) }
        return topics
    }

    /// Sends to every connection of `user`, cluster-wide; returns how many are on this node.
    @discardableResult
    public func send(_ message: WebSocketMessage, toUser user: String) -> Int {
        hub.publish(message, to: Hub.userTopic(user)).subscribers
    }

    @discardableResult
    public func send(_ message: WebSocketMessage, toTag tag: String) -> Int {
        hub.publish(message, to: Hub.tagTopic(tag)).subscribers
    }

    /// Closes every connection of `user`, cluster-wide; returns how many are on this node.
    @discardableResult
    public func close(user: String, code: WebSocketErrorCode, reason: String) -> Int {
        hub.closeSubscribers(of: Hub.userTopic(user), code: code.code, reason: reason)
    }

    @discardableResult
    public func close(tag: String, code: WebSocketErrorCode, reason: String) -> Int {
        hub.closeSubscribers(of: Hub.tagTopic(tag), code: code.code, reason: reason)
    }
}

/// A listed connection as a subscriber of its user's and tags' topics: messages go through the
/// directory to its session (on its event loop, under its overflow policy).
final class EntrySubscriber: HubSubscriber {
    let entry: SessionDirectory.Entry
    let directory: SessionDirectory

    init(entry: SessionDirectory.Entry, directory: SessionDirectory) {
        self.entry = entry
        self.directory = directory
    }

    var subscriberID: UInt64 { entry.id }

    func deliver(_ message: WebSocketMessage) {
        _ = directory.send(message, to: entry)
    }

    func closeRequested(code: UInt16, reason: String) {
        _ = directory.close(entry, code: WebSocketErrorCode(code: code), reason: reason)
    }
}

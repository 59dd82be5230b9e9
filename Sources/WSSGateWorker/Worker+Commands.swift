import NIOConcurrencyHelpers
import NIOCore
import WorkerProtocol

/// What a worker asks of the gateway: sends, closes, identities, hub subscriptions and
/// publishes, and the history its resumes read.
extension Worker {
    /// Sends a message to a client. A connection this worker does not hold goes over any link:
    /// in a cluster the gateway passes it on to the node holding it (docs/cluster.md), and
    /// otherwise ignores it.
    public func send(_ message: Message, to connection: UInt64) {
        commandLink(of: connection)?.write(.send(connection: connection, kind: message.kind, payload: message.data))
    }

    public func send(text: String, to connection: UInt64) {
        send(Message(text: text), to: connection)
    }

    /// Closes a client's connection with a close code.
    public func close(_ connection: UInt64, code: UInt16 = 1000, reason: String = "") {
        commandLink(of: connection)?.write(.close(connection: connection, code: code, reason: reason))
    }

    /// Sets the connection's attachment: the gateway keeps it (up to the route's
    /// `worker.attachment_bytes`; more breaks the protocol) and hands it back in
    /// `Connection.attachment` when the connection is opened again after a hibernation, a move
    /// or an instance's death — so what a worker needs to carry on can live with the
    /// connection rather than in the process. Empty clears it. Needs protocol version 2.
    public func attach(_ data: [UInt8], to connection: UInt64) {
        guard let link = link(of: connection), link.version.withLockedValue({ $0 }) >= 2 else { return }
        link.write(.attach(connection: connection, data: ByteBuffer(bytes: data)))
    }

    /// Sets the connection's user id (`user`; an empty one clears it, nil leaves it) and adds
    /// and removes tags. The admin API, workers and `http` routes then address the connection
    /// by user or tag, on every node of a cluster (`send(_:toUser:)`, `close(user:)`). Sent before
    /// `accept`, it takes effect with the upgrade. Needs protocol version 2.
    public func identify(_ connection: UInt64, user: String? = nil, addTags: [String] = [], removeTags: [String] = []) {
        guard let link = link(of: connection), link.version.withLockedValue({ $0 }) >= 2 else { return }
        link.write(.identify(connection: connection, user: user, add: addTags, remove: removeTags))
    }

    /// Sends a message to every connection of a user, wherever it is. Like `publish`, it goes to
    /// every connected gateway. Needs protocol version 2.
    public func send(_ message: Message, toUser user: String) {
        addressAll(.sendTo(target: .user(user), kind: message.kind, payload: message.data))
    }

    /// Sends a message to every connection with a tag, wherever it is.
    public func send(_ message: Message, toTag tag: String) {
        addressAll(.sendTo(target: .tag(tag), kind: message.kind, payload: message.data))
    }

    /// Closes every connection of a user, wherever it is.
    public func close(user: String, code: UInt16 = 1000, reason: String = "") {
        addressAll(.closeTo(target: .user(user), code: code, reason: reason))
    }

    /// Closes every connection with a tag, wherever it is.
    public func close(tag: String, code: UInt16 = 1000, reason: String = "") {
        addressAll(.closeTo(target: .tag(tag), code: code, reason: reason))
    }

    func addressAll(_ frame: WorkerFrame) {
        for link in hubLinks().values where link.version.withLockedValue({ $0 }) >= 2 { link.write(frame) }
    }

    /// Lets a connection that waits for a verdict (`Connection.verdictRequired`) upgrade.
    public func accept(_ connection: UInt64) {
        link(of: connection)?.write(.accept(connection: connection))
    }

    /// Refuses a connection that waits for a verdict; the client gets `status`.
    public func reject(_ connection: UInt64, status: UInt16 = 403, reason: String = "") {
        link(of: connection)?.write(.reject(connection: connection, status: status, reason: reason))
    }

    /// Hub commands (subscribe, unsubscribe, publish) go over one link per gateway, its oldest:
    /// a subscribe then reaches the gateway before a publish sent after it, which two links
    /// read by two threads would not promise.
    public func subscribe(_ connection: UInt64, to topic: String) {
        hubLink(for: connection)?.write(.subscribe(connection: connection, topic: topic))
    }

    public func unsubscribe(_ connection: UInt64, from topic: String) {
        hubLink(for: connection)?.write(.unsubscribe(connection: connection, topic: topic))
    }

    /// The oldest link of the gateway that holds `connection`.
    func hubLink(for connection: UInt64) -> ServerLinkHandler.Link? {
        guard let own = link(of: connection), let gateway = own.gateway.withLockedValue({ $0 }) else {
            return link(of: connection)
        }
        return hubLinks()[gateway] ?? own
    }

    /// Each gateway's oldest link, by the gateway's name.
    func hubLinks() -> [String: ServerLinkHandler.Link] {
        var chosen: [String: ServerLinkHandler.Link] = [:]
        for link in allLinks.withLockedValue({ Array($0.values) }) {
            guard let gateway = link.gateway.withLockedValue({ $0 }) else { continue }
            if chosen[gateway].map({ $0.sequence > link.sequence }) ?? true { chosen[gateway] = link }
        }
        return chosen
    }

    /// Publishes to a topic on every connected gateway: every subscriber gets it once. A gateway
    /// opens several links to one instance (one per event loop), all with its name in the
    /// hello; the message goes over one of each gateway's links.
    public func publish(_ message: Message, to topic: String) {
        for link in hubLinks().values {
            link.write(.publish(topic: topic, kind: message.kind, payload: message.data))
        }
    }

    /// Subscribes `connection` to `topic` (an exact topic) and resumes it after `since`, the
    /// position the client last saw (docs/hub-protocol.md, Resume; nil: from now): the gateway
    /// sends the client what it missed, then the live publications, and answers where the
    /// stream stands and whether everything missed could be sent (`status`).
    public func resume(
        _ connection: UInt64,
        to topic: String,
        since: WorkerFrame.Position? = nil
    ) async -> WorkerFrame.Subscribed {
        let none = WorkerFrame.Position(offset: 0, epoch: "")
        guard let link = hubLink(for: connection) else {
            return .init(connection: connection, status: .unavailable, position: none, missed: 0, topic: topic)
        }
        let answer = await history.waitForResume(HistoryRequests.key(connection, topic), on: ObjectIdentifier(link)) {
            link.write(.resume(connection: connection, since: since ?? none, topic: topic))
        }
        guard case .subscribed(let subscribed) = answer else {
            return .init(connection: connection, status: .unavailable, position: none, missed: 0, topic: topic)
        }
        return subscribed
    }

    /// Publishes like `publish`, and waits for the publication's position in the topic's
    /// history (`recorded`; `published` with no position when the topic keeps none). It goes
    /// to one gateway (the oldest link's): on a topic with history in a cluster, the shared
    /// history delivers it on every node.
    public func record(
        _ message: Message,
        to topic: String
    ) async -> (status: WorkerFrame.RecordStatus, position: WorkerFrame.Position) {
        guard let link = hubLinks().values.min(by: { $0.sequence < $1.sequence }) else {
            return (.failed, .init(offset: 0, epoch: ""))
        }
        let request = history.nextRequest()
        let answer = await history.waitForRecord(request, on: ObjectIdentifier(link)) {
            link.write(.record(request: request, topic: topic, kind: message.kind, payload: message.data))
        }
        guard case .recorded(let status, let position) = answer else { return (.failed, .init(offset: 0, epoch: "")) }
        return (status, position)
    }
}

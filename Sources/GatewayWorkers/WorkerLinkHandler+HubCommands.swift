import GatewayCore
import GatewayHub
import GatewayWebSocket
import NIOCore
import NIOWebSocket
import WorkerProtocol

/// A worker's hub commands: subscriptions of its connections, publishes (recorded or not),
/// resumes, and sends and closes addressed to a user's or a tag's connections anywhere.
extension WorkerLinkHandler {
    func carryOutHubCommand(_ frame: WorkerFrame, on link: WorkerLink) throws(WorkerProtocolError) {
        switch frame {
        case .subscribe(let id, let topic):
            // Hub commands may come over any link of this gateway (a worker sends them over one,
            // with its publishes, so that a subscribe takes effect before the publish it sent
            // after it): a connection open on another link of the pool is found by the pool.
            // Not the reply path: `send` and `credit` only ever use the link's own table.
            try Self.check(topic, allowPattern: true)
            if let connection = link.connection(id) ?? pool.connection(id) { pool.hub.subscribe(connection, to: topic) }
        case .unsubscribe(let id, let topic):
            try Self.check(topic, allowPattern: true)
            if link.connection(id) != nil || pool.connection(id) != nil { pool.hub.unsubscribe(id, from: topic) }
        case .publish(let topic, let kind, let payload):
            try Self.check(topic, allowPattern: false)
            if kind == .text, !UTF8Validator.isValid(payload) {
                throw WorkerProtocolError(.invalidValue, "publish of a text message that is not UTF-8 (topic \(topic))")
            }
            pool.hub.publish(WebSocketMessage(kind: .init(kind), data: payload), to: topic)
        case .resume(let id, let since, let topic):
            try Self.check(topic, allowPattern: false)
            if let connection = link.connection(id) ?? pool.connection(id) {
                connection.resume(topic, since: since, answeringOn: link)
            }
        case .record(let request, let topic, let kind, let payload):
            try Self.check(topic, allowPattern: false)
            if kind == .text, !UTF8Validator.isValid(payload) {
                throw WorkerProtocolError(.invalidValue, "record of a text message that is not UTF-8 (topic \(topic))")
            }
            record(
                HubMessage(WebSocketMessage(kind: .init(kind), data: payload)),
                on: topic,
                request: request,
                link: link
            )
        case .sendTo(let target, let kind, let payload):
            guard link.version >= 2 else { throw WorkerProtocolError(.unexpectedFrame, "send-to is version 2") }
            if kind == .text, !UTF8Validator.isValid(payload) {
                throw WorkerProtocolError(.invalidValue, "send-to of a text message that is not UTF-8")
            }
            pool.hub.publish(WebSocketMessage(kind: .init(kind), data: payload), to: try Self.topic(of: target))
        case .closeTo(let target, let code, let reason):
            guard link.version >= 2 else { throw WorkerProtocolError(.unexpectedFrame, "close-to is version 2") }
            guard WebSocketErrorCode.isValidOnWire(code) else {
                throw WorkerProtocolError(.invalidValue, "close-to with code \(code), which may not be sent")
            }
            pool.hub.closeSubscribers(of: try Self.topic(of: target), code: code, reason: reason)
        default:
            throw WorkerProtocolError(.unexpectedFrame, "\(frame.type) is not a hub command")
        }
    }

    /// A publish the worker wants to know the position of (`recorded`), or that it failed.
    private func record(_ message: HubMessage, on topic: String, request: UInt32, link: WorkerLink) {
        pool.hub.publish(message, to: topic, on: link.eventLoop).whenComplete { result in
            switch result {
            case .success(let publication):
                if let position = publication.position {
                    let recorded = WorkerFrame.Position(offset: position.offset, epoch: position.epoch)
                    link.write(.recorded(request: request, status: .recorded, position: recorded))
                } else {
                    link.write(.recorded(request: request, status: .published, position: .init(offset: 0, epoch: "")))
                }
            case .failure:
                link.write(.recorded(request: request, status: .failed, position: .init(offset: 0, epoch: "")))
            }
        }
    }

    /// The reserved hub topic of a user or tag (their connections are subscribed to it).
    private static func topic(of target: WorkerFrame.Addressee) throws(WorkerProtocolError) -> String {
        switch target {
        case .user(let user):
            guard SessionDirectory.Identity.isValidName(user) else {
                throw WorkerProtocolError(.invalidValue, "'\(user)' is not a user id")
            }
            return Hub.userTopic(user)
        case .tag(let tag):
            guard SessionDirectory.Identity.isValidName(tag) else {
                throw WorkerProtocolError(.invalidValue, "'\(tag)' is not a tag")
            }
            return Hub.tagTopic(tag)
        }
    }

    /// Workers and hub clients follow one rule for topics (docs/hub-protocol.md).
    private static func check(_ topic: String, allowPattern: Bool) throws(WorkerProtocolError) {
        guard HubRouteSettings.isValidTopic(topic, allowPattern: allowPattern) else {
            throw WorkerProtocolError(
                .invalidValue,
                "invalid topic '\(topic.prefix(64))': 1–255 bytes, no spaces or control characters"
                    + (allowPattern ? ", '*' only as a whole last segment" : ", no patterns")
            )
        }
    }
}

import GatewayCore
import GatewayHub
import GatewayWebSocket
import NIOCore
import NIOHTTP1

/// Users and tags: who is online, and sends and closes that reach them on every node.
extension AdminAPI {
    /// `/v1/users/{user}[/send|/close]` and `/v1/tags/{tag}[/send|/close]`: a user's or a tag's
    /// connections on every node, through the reserved topics that follow them.
    func addressedEndpoint(_ call: AdminCall) throws(AdminError) -> EventLoopFuture<AdminResponse> {
        let segments = call.segments
        guard segments.count == 3 || segments.count == 4 else { throw call.noSuchEndpoint }
        let isUser = segments[1] == "users"
        let addressee = call.decoded(2)
        guard SessionDirectory.Identity.isValidName(addressee) else {
            throw AdminError.invalidField(
                isUser ? "user" : "tag",
                "'\(addressee)' is not a \(isUser ? "user id" : "tag"): 1 to 255 bytes, no control characters"
            )
        }
        let topic = isUser ? Hub.userTopic(addressee) : Hub.tagTopic(addressee)
        let here: Int
        switch segments.count == 4 ? segments[3] : "" {
        case "":
            try call.only([.GET])
            try call.noQuery()
            return addressed(user: isUser ? addressee : nil, tag: isUser ? nil : addressee, on: call.eventLoop)
        case "send":
            try call.only([.POST])
            try call.noQuery()
            let message = try Self.message(from: try Self.object(call.request), allowed: [])
            here = hub.publish(message, to: topic).subscribers
        case "close":
            try call.only([.POST])
            try call.noQuery()
            let (code, reason) = try Self.closeFields(call.request)
            here = hub.closeSubscribers(of: topic, code: code.code, reason: reason)
        default:
            throw call.noSuchEndpoint
        }
        return call.eventLoop.makeSucceededFuture(
            Self.json(
                .accepted,
                AdminPayloads.AddressedAction(
                    user: isUser ? addressee : nil,
                    tag: isUser ? nil : addressee,
                    action: segments[3],
                    here: here
                )
            )
        )
    }

    /// Who has a user id or a tag, on every node: the presence of its reserved topic.
    func addressed(user: String?, tag: String?, on eventLoop: any EventLoop) -> EventLoopFuture<AdminResponse> {
        let topic = user.map(Hub.userTopic) ?? Hub.tagTopic(tag ?? "")
        @Sendable func answer(_ connections: [AdminPayloads.Presence.Subscriber]) -> AdminResponse {
            Self.json(
                .ok,
                AdminPayloads.Addressee(user: user, tag: tag, online: !connections.isEmpty, connections: connections)
            )
        }
        guard let cluster else {
            let ids = hub.subscriberIDs(receiving: topic).sorted()
            return eventLoop.makeSucceededFuture(answer(ids.map { .init(id: $0, node: nil) }))
        }
        return eventLoop.makeFutureWithTask {
            do {
                let entries = try await cluster.presence(of: topic)
                let connections = entries.flatMap { entry in
                    entry.ids.map { AdminPayloads.Presence.Subscriber(id: $0, node: entry.node) }
                }
                return answer(connections.sorted { $0.id < $1.id })
            } catch {
                return Self.failure(Self.adminError(error))
            }
        }
    }
}

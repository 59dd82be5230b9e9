import GatewayCore
import GatewayHub
import GatewayWebSocket
import NIOCore
import NIOHTTP1

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Topics: publish, list, who is subscribed, and what a topic's history keeps.
extension AdminAPI {
    /// `/v1/publish`, `/v1/topics`, and a topic's `presence` and `history`.
    func topicsEndpoint(_ call: AdminCall) throws(AdminError) -> EventLoopFuture<AdminResponse> {
        let segments = call.segments
        switch segments.count {
        case 2 where segments[1] == "publish":
            try call.only([.POST])
            try call.noQuery()
            return try publish(try Self.object(call.request), on: call.eventLoop)
        case 2:
            try call.only([.GET])
            try call.noQuery()
            // Users' and tags' own topics are listed at /v1/users and /v1/tags, not here.
            let topics = hub.subscriptionCounts().filter { !Hub.isReserved($0.subscription) }.map {
                AdminPayloads.Topic(topic: $0.subscription, subscribers: $0.subscribers)
            }
            return call.eventLoop.makeSucceededFuture(Self.json(.ok, AdminPayloads.Topics(topics: topics)))
        case 4 where segments[1] == "topics" && segments[3] == "presence":
            try call.only([.GET])
            try call.noQuery()
            return try presence(of: call.decoded(2), on: call.eventLoop)
        case 4 where segments[1] == "topics" && segments[3] == "history":
            try call.only([.GET])
            return try history(of: call.decoded(2), query: call.query, on: call.eventLoop)
        default:
            throw call.noSuchEndpoint
        }
    }

    func publish(
        _ body: [String: JSONValue],
        on eventLoop: any EventLoop
    ) throws(AdminError) -> EventLoopFuture<AdminResponse> {
        guard case .string(let topic)? = body["topic"] else {
            throw AdminError.invalidField(
                "topic",
                body["topic"] == nil ? "topic is required" : "topic must be a string"
            )
        }
        guard HubRouteSettings.isValidTopic(topic, allowPattern: false) else {
            throw AdminError.invalidField(
                "topic",
                "'\(topic)' is not a topic: 1 to 255 bytes, no spaces, control characters or '*'"
            )
        }
        let message: HubMessage
        if let data = body["data"] {
            for key in body.keys.sorted() where key != "topic" && key != "data" {
                throw AdminError.invalidField(
                    key,
                    key == "text" || key == "binary" ? "give one of text, binary or data" : "unknown field '\(key)'"
                )
            }
            message = .event(HubRouteService.messageEvent(topic: topic, data: data))
        } else {
            message = HubMessage(try Self.message(from: body, allowed: ["topic"]))
        }
        return hub.publish(message, to: topic, on: eventLoop).map { published in
            Self.json(
                .ok,
                AdminPayloads.Published(
                    topic: topic,
                    delivered: published.subscribers,
                    position: published.position
                )
            )
        }.recover { Self.failure(Self.adminError($0)) }
    }

    /// Who is subscribed to a topic (or pattern): on every live node in a cluster, else here.
    func presence(
        of topic: String,
        on eventLoop: any EventLoop
    ) throws(AdminError) -> EventLoopFuture<AdminResponse> {
        guard HubRouteSettings.isValidTopic(topic, allowPattern: true) else {
            throw AdminError.invalidField("topic", "'\(topic)' is not a topic or pattern")
        }
        guard let cluster else {
            let ids = (hub.subscriptionsByTopic()[topic] ?? []).sorted()
            return eventLoop.makeSucceededFuture(
                Self.json(.ok, AdminPayloads.Presence(topic: topic, subscribers: ids.map { .init(id: $0, node: nil) }))
            )
        }
        return eventLoop.makeFutureWithTask {
            do {
                let entries = try await cluster.presence(of: topic)
                let subscribers = entries.flatMap { entry in
                    entry.ids.map { AdminPayloads.Presence.Subscriber(id: $0, node: entry.node) }
                }
                return Self.json(
                    .ok,
                    AdminPayloads.Presence(topic: topic, subscribers: subscribers.sorted { $0.id < $1.id })
                )
            } catch {
                return Self.failure(Self.adminError(error))
            }
        }
    }

    /// A topic's kept publications, all or those after `since` (with `epoch`), as hub clients
    /// get them; 404 when no route keeps history for the topic.
    func history(
        of topic: String,
        query: [(String, String)],
        on eventLoop: any EventLoop
    ) throws(AdminError) -> EventLoopFuture<AdminResponse> {
        guard HubRouteSettings.isValidTopic(topic, allowPattern: false) else {
            throw AdminError.invalidField("topic", "'\(topic)' is not a topic (no patterns)")
        }
        var offset: UInt64?
        var epoch: String?
        for (name, value) in query {
            switch name {
            case "since":
                guard let number = UInt64(value) else {
                    throw AdminError.invalidField("since", "'\(value)' is not an offset (a whole number)")
                }
                offset = number
            case "epoch":
                guard !value.isEmpty else { throw AdminError.invalidField("epoch", "an epoch is not empty") }
                epoch = value
            default:
                throw AdminError.invalidField(name, "unknown query parameter '\(name)'")
            }
        }
        if (offset == nil) != (epoch == nil) {
            throw AdminError.invalidField(offset == nil ? "since" : "epoch", "give since and epoch together")
        }
        guard let history = hub.history(for: topic) else {
            throw AdminError.notFound("no route keeps history for topic '\(topic)' (hub.history)")
        }
        let since = offset.map { StreamPosition(offset: $0, epoch: epoch!) }
        return history.replay(topic, since: since, on: eventLoop).map { replay in
            let decoder = JSONDecoder()
            let publications = replay.events.compactMap {
                try? decoder.decode(JSONValue.self, from: Data($0.readableBytesView))
            }
            return Self.json(
                .ok,
                AdminPayloads.History(
                    topic: topic,
                    position: replay.position,
                    recovered: replay.recovered,
                    publications: publications
                )
            )
        }.recover { Self.failure(Self.adminError($0)) }
    }
}

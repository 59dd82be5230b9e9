import GatewayCore
import GatewayWebSocket
import NIOCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A hub client's requests (docs/hub-protocol.md): each is checked against the route's rules
/// and limits and answered with an `ack` or an `error` naming what was wrong.
extension HubConnection {
    func session(_ session: WebSocketSessionHandler, didReceive message: WebSocketMessage) {
        guard message.kind == .text else {
            return answer(Reply(op: "error", error: "the hub protocol is JSON in text messages"), to: session)
        }
        guard JSONBudget.fits(message.data.readableBytesView) else {
            return answer(
                Reply(op: "error", error: "a request holds at most \(JSONBudget.maxValues) JSON values"),
                to: session
            )
        }
        guard let request = try? coders.value.0.decode(Request.self, from: Data(message.data.readableBytesView)) else {
            return answer(
                Reply(op: "error", error: "not a hub request: expected {\"op\": …, \"topic\": …}"),
                to: session
            )
        }
        switch request.op {
        case "subscribe", "unsubscribe": subscription(request, session: session)
        case "publish": publish(request, session: session)
        case "presence": presence(request, session: session)
        default:
            answer(
                Reply(
                    op: "error",
                    id: request.id,
                    error: "unknown op '\(request.op)': use subscribe, unsubscribe, publish or presence"
                ),
                to: session
            )
        }
    }

    private func subscription(_ request: Request, session: WebSocketSessionHandler) {
        let settings = service.settings
        guard let topic = request.topic, HubRouteSettings.isValidTopic(topic, allowPattern: true) else {
            return answer(Reply(op: "error", id: request.id, error: "topic missing or invalid"), to: session)
        }
        if request.op == "subscribe" {
            guard HubRouteSettings.allows(settings.subscribe, topic) else {
                return answer(
                    Reply(
                        op: "error",
                        id: request.id,
                        topic: topic,
                        error: "subscribing to this topic is not allowed"
                    ),
                    to: session
                )
            }
            // Bounded per connection: a client subscribing to ever new topics makes the hub
            // keep no more for it than this. Reserved topics (its user's, its tags') are the
            // gateway's, not the client's, and do not count.
            let held = service.hub.ownSubscriptions(of: subscriberID, holding: topic)
            if !held.holds, held.count >= settings.maxSubscriptions {
                return answer(
                    Reply(
                        op: "error",
                        id: request.id,
                        topic: topic,
                        error: "this connection holds \(settings.maxSubscriptions) subscriptions, the most it may"
                    ),
                    to: session
                )
            }
            // Bounded per route too: many connections together keep no more patterns than this.
            if !held.holds, Hub.isPattern(topic), !service.reservePattern() {
                return answer(
                    Reply(
                        op: "error",
                        id: request.id,
                        topic: topic,
                        error: "this route's connections hold \(settings.maxPatterns) patterns, the most they may"
                    ),
                    to: session
                )
            }
            return subscribe(to: topic, since: request.since, id: request.id, session: session)
        }
        if service.hub.unsubscribe(subscriberID, from: topic), Hub.isPattern(topic) { service.releasePatterns(1) }
        positions.value[topic] = nil
        answer(Reply(op: "ack", id: request.id, topic: topic), to: session)
    }

    private func publish(_ request: Request, session: WebSocketSessionHandler) {
        let settings = service.settings
        guard let topic = request.topic, HubRouteSettings.isValidTopic(topic, allowPattern: false) else {
            return answer(
                Reply(op: "error", id: request.id, error: "topic missing or invalid (no patterns in publish)"),
                to: session
            )
        }
        guard HubRouteSettings.allows(settings.publish, topic) else {
            return answer(
                Reply(op: "error", id: request.id, topic: topic, error: "publishing to this topic is not allowed"),
                to: session
            )
        }
        // Encoded once; every subscriber gets the same bytes.
        let event = HubMessage.event(encode(Reply(op: "message", topic: topic, data: request.data ?? .null)))
        service.hub.publish(event, to: topic, on: eventLoop).whenComplete { result in
            guard let session = self.session.value else { return }
            switch result {
            case .success(let published):
                self.answer(
                    Reply(
                        op: "ack",
                        id: request.id,
                        topic: topic,
                        data: .number(Double(published.subscribers)),
                        position: published.position
                    ),
                    to: session
                )
            case .failure(let error):
                // After a timeout the history may hold it: saying "not published" would make
                // a careful publisher publish it twice.
                let text =
                    error is UndecidedAppend
                    ? "publish outcome unknown: \(error); read the history from your last position before publishing again"
                    : "not published: \(error)"
                self.answer(Reply(op: "error", id: request.id, topic: topic, error: text), to: session)
            }
        }
    }

    private func presence(_ request: Request, session: WebSocketSessionHandler) {
        let settings = service.settings
        guard settings.presence else {
            return answer(
                Reply(op: "error", id: request.id, error: "presence is not allowed on this route (hub.presence)"),
                to: session
            )
        }
        guard let user = request.user, SessionDirectory.Identity.isValidName(user) else {
            return answer(Reply(op: "error", id: request.id, error: "user missing or invalid"), to: session)
        }
        service.hub.presenceCount(of: Hub.userTopic(user), on: eventLoop).whenComplete { result in
            guard let session = self.session.value else { return }
            switch result {
            case .success(let count):
                self.answer(
                    Reply(op: "presence", id: request.id, user: user, online: count > 0, count: count),
                    to: session
                )
            case .failure(let error):
                self.answer(Reply(op: "error", id: request.id, error: "presence unknown: \(error)"), to: session)
            }
        }
    }
}

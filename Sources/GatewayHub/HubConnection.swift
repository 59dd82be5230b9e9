import GatewayCore
import GatewayWebSocket
import NIOConcurrencyHelpers
import NIOCore
import NIOWebSocket

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One client of a hub route. Its state lives on its event loop (a `NIOLoopBoundBox` checks it);
/// `deliver` may be called from anywhere and hops there.
final class HubConnection: WebSocketApplication, HubSubscriber, Sendable {
    struct Request: Decodable {
        var op: String
        var topic: String?
        var id: JSONValue?
        var data: JSONValue?
        /// A subscribe's resume point: the last position the client saw.
        var since: StreamPosition?
        /// `presence`: whose.
        var user: String?
    }

    struct Reply: Encodable {
        var op: String
        var id: JSONValue?
        var topic: String?
        var data: JSONValue?
        var error: String?
        /// `base64` when `data` carries a binary publish.
        var encoding: String?
        /// On a topic with history: where the stream stands (a subscribe's ack), or the
        /// publication's own position (a publish's ack).
        var position: StreamPosition?
        /// A subscribe with `since`: whether every publication after it follows.
        var recovered: Bool?
        /// A subscribe with `since` that recovered: how many publications follow the ack.
        var missed: Int?
        /// `presence`: whose, whether online, on how many connections.
        var user: String?
        var online: Bool?
        var count: Int?
    }

    let subscriberID: UInt64
    let eventLoop: any EventLoop
    let service: HubRouteService
    let session: NIOLoopBoundBox<WebSocketSessionHandler?>
    /// The offset of the last publication sent, per topic with history: a delivery at or
    /// below it was sent already (from the history, by a resume) and is dropped.
    let positions: NIOLoopBoundBox<[String: UInt64]>
    /// Live publications that arrived while the topic's history was being read, in order.
    private let recovering: NIOLoopBoundBox<[String: [(UInt64, WebSocketMessage)]]>
    /// Made once per connection (used only on its event loop), not once per message.
    let coders: NIOLoopBoundBox<(JSONDecoder, JSONEncoder)>

    static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    static func encode(_ reply: Reply, with encoder: JSONEncoder) -> ByteBuffer {
        ByteBuffer(bytes: (try? encoder.encode(reply)) ?? Data("{}".utf8))
    }

    var speaksHubProtocol: Bool { true }

    init(id: UInt64, eventLoop: any EventLoop, service: HubRouteService) {
        self.subscriberID = id
        self.eventLoop = eventLoop
        self.service = service
        self.session = NIOLoopBoundBox.makeEmptyBox(valueType: WebSocketSessionHandler.self, eventLoop: eventLoop)
        self.positions = NIOLoopBoundBox([:], eventLoop: eventLoop)
        self.recovering = NIOLoopBoundBox([:], eventLoop: eventLoop)
        self.coders = NIOLoopBoundBox((JSONDecoder(), HubConnection.makeEncoder()), eventLoop: eventLoop)
    }

    func encode(_ reply: Reply) -> ByteBuffer {
        Self.encode(reply, with: coders.value.1)
    }

    func sessionDidOpen(_ session: WebSocketSessionHandler) {
        self.session.value = session
    }

    func sessionDidClose(_ session: WebSocketSessionHandler, code: WebSocketErrorCode?) {
        let held = service.hub.unsubscribeAll(subscriberID)
        service.releasePatterns(held.lazy.filter(Hub.isPattern).count)
        self.session.value = nil
    }

    /// Subscribes; on a topic with history the ack says where the stream stands, and with
    /// `since` the publications the client missed follow it, in order, before any live one.
    ///
    /// The subscription is made before the history is read: a publication recorded before the
    /// read is in it, one recorded after reaches this connection live, and one in both (recorded
    /// before, delivered after) is dropped by `positions`. While the read is out (a cluster's
    /// history answers later), live ones wait in `recovering` — no gap and no duplicate at the
    /// seam, and nothing out of order.
    func subscribe(to topic: String, since: StreamPosition?, id: JSONValue?, session: WebSocketSessionHandler) {
        let history = Hub.isPattern(topic) ? nil : service.hub.history(for: topic)
        guard let history else {
            if since != nil {
                let why =
                    Hub.isPattern(topic)
                    ? "since needs an exact topic: a pattern has no position to resume from"
                    : "this topic keeps no history to resume from"
                return answer(Reply(op: "error", id: id, topic: topic, error: why), to: session)
            }
            service.hub.subscribe(self, to: topic)
            return answer(Reply(op: "ack", id: id, topic: topic), to: session)
        }
        service.hub.subscribe(self, to: topic)
        recovering.value[topic] = recovering.value[topic] ?? []
        history.recover(topic, since: since, on: eventLoop).hop(to: eventLoop).whenComplete { result in
            let waiting = self.recovering.value.removeValue(forKey: topic) ?? []
            guard let session = self.session.value else { return }
            switch result {
            case .success(let recovery):
                self.positions.value[topic] = recovery.position.offset
                self.answer(
                    Reply(
                        op: "ack",
                        id: id,
                        topic: topic,
                        position: recovery.position,
                        recovered: recovery.recovered,
                        missed: recovery.recovered == true ? recovery.entries.count : nil
                    ),
                    to: session
                )
                for entry in recovery.entries {
                    let event = HubRouteService.event(for: entry.message, topic: topic, offset: entry.offset)
                    session.sendUnlessFull(event)
                }
            case .failure(let error):
                // The live ones are still delivered: without a position the client cannot
                // tell what it missed, so it is told the history was unavailable.
                self.positions.value[topic] = nil
                self.answer(
                    Reply(
                        op: "error",
                        id: id,
                        topic: topic,
                        error: "the topic's history is unavailable (\(error)); subscribed to live messages"
                    ),
                    to: session
                )
            }
            for (offset, message) in waiting { self.send(message, topic: topic, offset: offset) }
        }
    }

    func answer(_ reply: Reply, to session: WebSocketSessionHandler) {
        session.send(WebSocketMessage(kind: .text, data: encode(reply)))
    }

    /// A message sent to this connection by its id, its user or a tag: a `direct` event, so
    /// the client reads JSON only. What is addressed is always raw: only the gateway names
    /// user and tag topics, and a publish to them comes from a send, never from a hub client.
    func addressedMessage(_ message: WebSocketMessage) -> WebSocketMessage {
        HubRouteService.event(wrapping: message, topic: nil)
    }

    /// A topic's message; the session bounds its queue, so a client that does not read never
    /// slows the publisher or the others. On the session's own loop it is sent at once, without
    /// a task per subscriber.
    func deliver(_ message: WebSocketMessage) {
        if eventLoop.inEventLoop {
            session.value?.sendUnlessFull(message)
        } else {
            eventLoop.execute { self.deliver(message) }
        }
    }

    var deliveryLoop: (any EventLoop)? { eventLoop }

    /// A publication with its offset, on this connection's loop: held while the topic's
    /// history is being read for a resume, dropped when this connection has sent it (or a
    /// later one) already.
    func deliver(_ message: WebSocketMessage, topic: String, offset: UInt64) {
        if recovering.value[topic] != nil {
            recovering.value[topic]!.append((offset, message))
        } else {
            send(message, topic: topic, offset: offset)
        }
    }

    private func send(_ message: WebSocketMessage, topic: String, offset: UInt64) {
        if let last = positions.value[topic], offset <= last { return }
        positions.value[topic] = offset
        session.value?.sendUnlessFull(message)
    }
}

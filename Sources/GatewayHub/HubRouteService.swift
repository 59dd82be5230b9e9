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

/// A `hub` route: browsers use hub topics directly, with no backend, through the JSON protocol
/// of docs/hub-protocol.md, within the route's `subscribe` and `publish` rules.
///
/// A reload that changes the rules updates them here, so they apply to the next subscribe and
/// publish of every connection, those already open included.
public final class HubRouteService: RouteService {
    private let rules: NIOLockedValueBox<HubRouteSettings>
    let hub: Hub

    public init(rules: HubRouteSettings, hub: Hub) {
        self.rules = NIOLockedValueBox(rules)
        self.hub = hub
    }

    var settings: HubRouteSettings { rules.withLockedValue { $0 } }

    /// New `subscribe` and `publish` rules, from a reload.
    public func update(rules new: HubRouteSettings) {
        rules.withLockedValue { $0 = new }
    }

    public var isReady: Bool { true }

    /// The bytes of a `message` event, as hub-route clients receive a publish to `topic`; the
    /// admin API publishes `data` in the same form.
    public static func messageEvent(topic: String, data: JSONValue) -> ByteBuffer {
        HubConnection.encode(
            HubConnection.Reply(op: "message", topic: topic, data: data),
            with: HubConnection.makeEncoder()
        )
    }

    /// A publish that is not a hub event (a worker's, or the admin API's `text` or `binary`),
    /// as hub clients get it: `data` is the payload itself when it is JSON text, a string when
    /// it is other text, and base64 with `"encoding":"base64"` when it is binary.
    static func event(wrapping message: WebSocketMessage, topic: String) -> WebSocketMessage {
        let reply: HubConnection.Reply
        switch message.kind {
        case .text:
            let bytes = Data(message.data.readableBytesView)
            let data = (try? JSONDecoder().decode(JSONValue.self, from: bytes)) ?? .string(String(buffer: message.data))
            reply = HubConnection.Reply(op: "message", topic: topic, data: data)
        case .binary:
            reply = HubConnection.Reply(
                op: "message",
                topic: topic,
                data: .string(Data(message.data.readableBytesView).base64EncodedString()),
                encoding: "base64"
            )
        }
        var event = WebSocketMessage(kind: .text, data: HubConnection.encode(reply, with: HubConnection.makeEncoder()))
        event.isHubEvent = true
        return event
    }

    public func prepare(
        _ request: UpgradeRequest,
        eventLoop: any EventLoop,
        completion: @escaping (UpgradeVerdict) -> Void
    ) {
        completion(.accept(HubConnection(id: request.connectionID, eventLoop: eventLoop, service: self)))
    }
}

/// One client of a hub route. Its state lives on its event loop (a `NIOLoopBoundBox` checks it);
/// `deliver` may be called from anywhere and hops there.
final class HubConnection: WebSocketApplication, HubSubscriber, Sendable {
    struct Request: Decodable {
        var op: String
        var topic: String?
        var id: JSONValue?
        var data: JSONValue?
    }

    struct Reply: Encodable {
        var op: String
        var id: JSONValue?
        var topic: String?
        var data: JSONValue?
        var error: String?
        /// `base64` when `data` carries a binary publish.
        var encoding: String?
    }

    let subscriberID: UInt64
    let eventLoop: any EventLoop
    private let service: HubRouteService
    private let session: NIOLoopBoundBox<WebSocketSessionHandler?>
    /// Made once per connection (used only on its event loop), not once per message.
    private let coders: NIOLoopBoundBox<(JSONDecoder, JSONEncoder)>

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
        self.coders = NIOLoopBoundBox((JSONDecoder(), HubConnection.makeEncoder()), eventLoop: eventLoop)
    }

    private func encode(_ reply: Reply) -> ByteBuffer {
        Self.encode(reply, with: coders.value.1)
    }

    func sessionDidOpen(_ session: WebSocketSessionHandler) {
        self.session.value = session
    }

    func sessionDidClose(_ session: WebSocketSessionHandler, code: WebSocketErrorCode?) {
        service.hub.unsubscribeAll(subscriberID)
        self.session.value = nil
    }

    func session(_ session: WebSocketSessionHandler, didReceive message: WebSocketMessage) {
        guard message.kind == .text else {
            return answer(Reply(op: "error", error: "the hub protocol is JSON in text messages"), to: session)
        }
        guard let request = try? coders.value.0.decode(Request.self, from: Data(message.data.readableBytesView)) else {
            return answer(
                Reply(op: "error", error: "not a hub request: expected {\"op\": …, \"topic\": …}"),
                to: session
            )
        }
        let settings = service.settings
        switch request.op {
        case "subscribe", "unsubscribe":
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
                service.hub.subscribe(self, to: topic)
            } else {
                service.hub.unsubscribe(subscriberID, from: topic)
            }
            answer(Reply(op: "ack", id: request.id, topic: topic), to: session)
        case "publish":
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
            var event = WebSocketMessage(
                kind: .text,
                data: encode(Reply(op: "message", topic: topic, data: request.data ?? .null))
            )
            event.isHubEvent = true
            let delivered = service.hub.publish(event, to: topic)
            answer(Reply(op: "ack", id: request.id, topic: topic, data: .number(Double(delivered))), to: session)
        default:
            answer(
                Reply(
                    op: "error",
                    id: request.id,
                    error: "unknown op '\(request.op)': use subscribe, unsubscribe or publish"
                ),
                to: session
            )
        }
    }

    private func answer(_ reply: Reply, to session: WebSocketSessionHandler) {
        session.send(WebSocketMessage(kind: .text, data: encode(reply)))
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
}

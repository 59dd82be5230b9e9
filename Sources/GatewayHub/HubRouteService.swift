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
    /// The pattern subscriptions the route's connections hold (`max_patterns`).
    private let patterns = NIOLockedValueBox(0)

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

    /// Counts one more pattern subscription; false, counting nothing, when the route's
    /// connections hold `max_patterns` already.
    func reservePattern() -> Bool {
        let limit = settings.maxPatterns
        return patterns.withLockedValue { held in
            guard held < limit else { return false }
            held += 1
            return true
        }
    }

    /// Pattern subscriptions given up (unsubscribed, or their connection closed).
    func releasePatterns(_ count: Int) {
        guard count > 0 else { return }
        patterns.withLockedValue { $0 -= count }
    }

    /// The pattern subscriptions the route's connections hold now.
    public var patternSubscriptions: Int { patterns.withLockedValue { $0 } }

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
    /// it is other text, and base64 with `"encoding":"base64"` when it is binary. Without a
    /// topic it is a `direct` event: a message addressed to the connection itself.
    static func event(wrapping message: WebSocketMessage, topic: String?) -> WebSocketMessage {
        let op = topic == nil ? "direct" : "message"
        let reply: HubConnection.Reply
        switch message.kind {
        case .text:
            let bytes = Data(message.data.readableBytesView)
            let data = (try? JSONDecoder().decode(JSONValue.self, from: bytes)) ?? .string(String(buffer: message.data))
            reply = HubConnection.Reply(op: op, topic: topic, data: data)
        case .binary:
            reply = HubConnection.Reply(
                op: op,
                topic: topic,
                data: .string(Data(message.data.readableBytesView).base64EncodedString()),
                encoding: "base64"
            )
        }
        return WebSocketMessage(kind: .text, data: HubConnection.encode(reply, with: HubConnection.makeEncoder()))
    }

    /// A hub event's bytes with `"offset":N` added: keys are sorted, so it goes right before
    /// the top-level `"op"`, which is the last `,"op":"message","topic":"` of the event (inside
    /// `data` the same characters are either escaped, in a string, or earlier, in an object).
    static func event(_ event: ByteBuffer, offset: UInt64) -> ByteBuffer {
        let marker = Array(#","op":"message","topic":""#.utf8)
        let bytes = event.readableBytesView
        var index = bytes.endIndex - marker.count
        while index >= bytes.startIndex {
            if bytes[index] == UInt8(ascii: ","), bytes[index..<(index + marker.count)].elementsEqual(marker) {
                var result = ByteBuffer()
                result.reserveCapacity(event.readableBytes + 32)
                result.writeBytes(bytes[bytes.startIndex..<index])
                result.writeString(#","offset":\#(offset)"#)
                result.writeBytes(bytes[index...])
                return result
            }
            index -= 1
        }
        return event
    }

    /// A recorded publication as hub clients get it: a `message` event with its offset.
    static func event(for message: HubMessage, topic: String, offset: UInt64) -> WebSocketMessage {
        let base = message.isEvent ? message.message : event(wrapping: message.message, topic: topic)
        var event = WebSocketMessage(kind: .text, data: Self.event(base.data, offset: offset))
        event.sharedCompression = SharedCompression()
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

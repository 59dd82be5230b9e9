import GatewayWebSocket
import NIOConcurrencyHelpers

/// Something that can receive a topic's messages: a client connection, on whatever event loop
/// it lives. `deliver` is called from any thread and must not block.
public protocol HubSubscriber: AnyObject, Sendable {
    var subscriberID: UInt64 { get }
    func deliver(_ message: WebSocketMessage)
}

/// The in-process topic router: named topics, many subscriptions per connection, and a publish
/// that reaches every subscriber once, whichever route it came in on.
///
/// Subscribers are copied out under the lock and delivered to outside it, so a publish never
/// waits on a subscriber; each subscriber bounds its own queue. Publishes from one thread reach
/// each subscriber in the order they were made.
public final class Hub: Sendable {
    private struct State {
        var topics: [String: [UInt64: any HubSubscriber]] = [:]
        /// Prefix subscriptions (`news.*` is stored as `news.`; `*` as the empty prefix).
        var prefixes: [String: [UInt64: any HubSubscriber]] = [:]
        var subscriptions: [UInt64: Set<String>] = [:]
    }

    /// Whether a subscription names a pattern (`news.*`, `*`) rather than one topic.
    public static func isPattern(_ topic: String) -> Bool { topic == "*" || topic.hasSuffix(".*") }

    /// Whether `topic` falls under `pattern` (an exact topic, `prefix.*`, or `*`).
    public static func matches(_ pattern: String, _ topic: String) -> Bool {
        if pattern == "*" { return true }
        if pattern.hasSuffix(".*") { return topic.hasPrefix(pattern.dropLast()) }
        return pattern == topic
    }
    private let state = NIOLockedValueBox(State())

    public init() {}

    /// Subscribes to a topic, or to a pattern: `news.*` (every topic under `news.`) or `*`.
    public func subscribe(_ subscriber: any HubSubscriber, to topic: String) {
        state.withLockedValue { state in
            if Self.isPattern(topic) {
                state.prefixes[String(topic.dropLast()), default: [:]][subscriber.subscriberID] = subscriber
            } else {
                state.topics[topic, default: [:]][subscriber.subscriberID] = subscriber
            }
            state.subscriptions[subscriber.subscriberID, default: []].insert(topic)
        }
    }

    private static func remove(_ subscriberID: UInt64, from topic: String, in state: inout State) {
        if isPattern(topic) {
            let prefix = String(topic.dropLast())
            state.prefixes[prefix]?[subscriberID] = nil
            if state.prefixes[prefix]?.isEmpty == true { state.prefixes[prefix] = nil }
        } else {
            state.topics[topic]?[subscriberID] = nil
            if state.topics[topic]?.isEmpty == true { state.topics[topic] = nil }
        }
    }

    public func unsubscribe(_ subscriberID: UInt64, from topic: String) {
        state.withLockedValue { state in
            Self.remove(subscriberID, from: topic, in: &state)
            state.subscriptions[subscriberID]?.remove(topic)
            if state.subscriptions[subscriberID]?.isEmpty == true { state.subscriptions[subscriberID] = nil }
        }
    }

    /// Removes every subscription of a connection (it closed).
    public func unsubscribeAll(_ subscriberID: UInt64) {
        state.withLockedValue { state in
            for topic in state.subscriptions.removeValue(forKey: subscriberID) ?? [] {
                Self.remove(subscriberID, from: topic, in: &state)
            }
        }
    }

    /// Delivers `message` once to every subscriber of `topic` (directly or by a pattern);
    /// returns how many there were. `message` may be built lazily, once, for the topic.
    @discardableResult
    public func publish(_ message: WebSocketMessage, to topic: String) -> Int {
        let subscribers = state.withLockedValue { state -> [any HubSubscriber] in
            var found = state.topics[topic] ?? [:]
            for (prefix, subscribers) in state.prefixes where topic.hasPrefix(prefix) {
                found.merge(subscribers) { first, _ in first }
            }
            return Array(found.values)
        }
        var message = message
        if subscribers.count > 1 && message.sharedCompression == nil {
            // Many sessions get the same bytes: let them share the compressed form too.
            message.sharedCompression = SharedCompression()
        }
        for subscriber in subscribers { subscriber.deliver(message) }
        return subscribers.count
    }

    /// Every subscription in use (topics and patterns) with its number of subscribers, sorted.
    public func subscriptionCounts() -> [(subscription: String, subscribers: Int)] {
        state.withLockedValue { state in
            let exact = state.topics.map { ($0.key, $0.value.count) }
            let patterns = state.prefixes.map { ($0.key + "*", $0.value.count) }
            return (exact + patterns).sorted { $0.0 < $1.0 }
        }
    }

    /// The connections a publish to `topic` would reach (directly or by a pattern).
    public func subscriberIDs(receiving topic: String) -> Set<UInt64> {
        state.withLockedValue { state in
            var found = Set(state.topics[topic]?.keys ?? [:].keys)
            for (prefix, subscribers) in state.prefixes where topic.hasPrefix(prefix) {
                found.formUnion(subscribers.keys)
            }
            return found
        }
    }

    public func subscriberCount(of topic: String) -> Int {
        state.withLockedValue { $0.topics[topic]?.count ?? 0 }
    }

    public func topics(of subscriberID: UInt64) -> Set<String> {
        state.withLockedValue { $0.subscriptions[subscriberID] ?? [] }
    }
}

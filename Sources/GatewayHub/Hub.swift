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
        var subscriptions: [UInt64: Set<String>] = [:]
    }
    private let state = NIOLockedValueBox(State())

    public init() {}

    public func subscribe(_ subscriber: any HubSubscriber, to topic: String) {
        state.withLockedValue { state in
            state.topics[topic, default: [:]][subscriber.subscriberID] = subscriber
            state.subscriptions[subscriber.subscriberID, default: []].insert(topic)
        }
    }

    public func unsubscribe(_ subscriberID: UInt64, from topic: String) {
        state.withLockedValue { state in
            state.topics[topic]?[subscriberID] = nil
            if state.topics[topic]?.isEmpty == true { state.topics[topic] = nil }
            state.subscriptions[subscriberID]?.remove(topic)
            if state.subscriptions[subscriberID]?.isEmpty == true { state.subscriptions[subscriberID] = nil }
        }
    }

    /// Removes every subscription of a connection (it closed).
    public func unsubscribeAll(_ subscriberID: UInt64) {
        state.withLockedValue { state in
            for topic in state.subscriptions.removeValue(forKey: subscriberID) ?? [] {
                state.topics[topic]?[subscriberID] = nil
                if state.topics[topic]?.isEmpty == true { state.topics[topic] = nil }
            }
        }
    }

    /// Delivers `message` to every subscriber of `topic`; returns how many there were.
    @discardableResult
    public func publish(_ message: WebSocketMessage, to topic: String) -> Int {
        let subscribers = state.withLockedValue { $0.topics[topic].map { Array($0.values) } ?? [] }
        for subscriber in subscribers { subscriber.deliver(message) }
        return subscribers.count
    }

    public func subscriberCount(of topic: String) -> Int {
        state.withLockedValue { $0.topics[topic]?.count ?? 0 }
    }

    public func topics(of subscriberID: UInt64) -> Set<String> {
        state.withLockedValue { $0.subscriptions[subscriberID] ?? [] }
    }
}

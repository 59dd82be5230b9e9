import GatewayCore
import GatewayWebSocket
import NIOConcurrencyHelpers
import NIOCore

/// Something that can receive a topic's messages: a client connection, on whatever event loop
/// it lives. `deliver` is called from any thread and must not block.
public protocol HubSubscriber: AnyObject, Sendable {
    var subscriberID: UInt64 { get }
    /// A hub-route client speaks the hub protocol: a publish reaches it as a `message` event,
    /// whoever made it. Worker-route connections get the message as it was published.
    var speaksHubProtocol: Bool { get }
    func deliver(_ message: WebSocketMessage)
    /// The event loop the subscriber lives on: a topic's recorded publications are handed to
    /// it there, one task per loop and publication for all its subscribers on that loop.
    var deliveryLoop: (any EventLoop)? { get }
    /// A publication on a topic with history, with its offset, in offset order: on
    /// `deliveryLoop`, or (without one) under the history's lock.
    func deliver(_ message: WebSocketMessage, topic: String, offset: UInt64)
    /// Every subscriber of a reserved topic (`$user:…`, `$tag:…`) is to close: the admin API,
    /// a worker or an HTTP backend closed a user's or a tag's connections. Others ignore it.
    func closeRequested(code: UInt16, reason: String)
}

extension HubSubscriber {
    public var speaksHubProtocol: Bool { false }
    public var deliveryLoop: (any EventLoop)? { nil }
    public func deliver(_ message: WebSocketMessage, topic: String, offset: UInt64) { deliver(message) }
    public func closeRequested(code: UInt16, reason: String) {}
}

/// The in-process topic router: named topics, many subscriptions per connection, and a publish
/// that reaches every subscriber once, whichever route it came in on.
///
/// Subscribers are copied out under the lock and delivered to outside it, so a publish never
/// waits on a subscriber; each subscriber bounds its own queue. Publishes from one thread reach
/// each subscriber in the order they were made.
public final class Hub: Sendable {
    /// Learns what happens in the hub, after it happened: the cluster link (GatewayCluster)
    /// forwards publishes to the other nodes and keeps presence. Called outside the hub's lock,
    /// on the thread that made the change.
    public protocol Observer: AnyObject, Sendable {
        func hub(published message: HubMessage, to topic: String)
        func hub(subscribed subscriberID: UInt64, to topic: String)
        func hub(unsubscribed subscriberID: UInt64, from topics: [String])
        /// `closeSubscribers(of:code:reason:)` on a reserved topic: every node closes its own.
        func hub(closedSubscribersOf topic: String, code: UInt16, reason: String)
    }

    struct State {
        var topics: [String: [UInt64: any HubSubscriber]] = [:]
        /// Prefix subscriptions (`news.*` is stored as `news.`; `*` as the empty prefix).
        var prefixes: [String: [UInt64: any HubSubscriber]] = [:]
        var subscriptions: [UInt64: Set<String>] = [:]
        /// How many of each connection's subscriptions are its own: the reserved topics its
        /// user and tags subscribe it to are the gateway's. Kept as subscriptions change, so
        /// the per-connection limit costs a subscribe nothing however many it holds.
        var ownSubscriptions: [UInt64: Int] = [:]
    }

    /// What a publish did: the local subscribers it reached, and its position when the topic
    /// keeps history.
    public struct Publication: Sendable, Equatable {
        public var subscribers: Int
        public var position: StreamPosition?
    }

    /// Counts a topic's subscribers on every node (the cluster link); none: this gateway's.
    public protocol PresenceSource: AnyObject, Sendable {
        func subscriberCount(of topic: String) async throws -> Int
    }

    private let presenceSource = NIOLockedValueBox<(any PresenceSource)?>(nil)

    /// Set once, before traffic (the cluster link); nil detaches.
    public func setPresenceSource(_ source: (any PresenceSource)?) {
        presenceSource.withLockedValue { $0 = source }
    }

    /// A topic's subscribers on every node of a cluster, or on this gateway; completes on `eventLoop`.
    public func presenceCount(of topic: String, on eventLoop: any EventLoop) -> EventLoopFuture<Int> {
        guard let source = presenceSource.withLockedValue({ $0 }) else {
            return eventLoop.makeSucceededFuture(subscriberCount(of: topic))
        }
        return eventLoop.makeFutureWithTask { try await source.subscriberCount(of: topic) }
    }

    let state = NIOLockedValueBox(State())
    private let observerBox = NIOLockedValueBox<(any Observer)?>(nil)
    private let historiesBox = NIOLockedValueBox<[TopicHistory]>([])

    public init() {}

    /// Set once, before traffic (the cluster link); nil detaches.
    public func setObserver(_ observer: (any Observer)?) {
        observerBox.withLockedValue { $0 = observer }
    }

    private var observer: (any Observer)? { observerBox.withLockedValue { $0 } }

    /// The hub routes' histories, in the configuration's order; set once, before traffic.
    public func setHistories(_ histories: [TopicHistory]) {
        historiesBox.withLockedValue { $0 = histories }
    }

    /// The history that covers `topic` (the first route's that does), if any.
    public func history(for topic: String) -> TopicHistory? {
        if Self.isReserved(topic) { return nil }  // a user's or tag's messages are not kept
        return historiesBox.withLockedValue { histories in
            histories.isEmpty ? nil : histories.first { $0.settings.covers(topic) }
        }
    }

    /// Subscribes to a topic, or to a pattern: `news.*` (every topic under `news.`) or `*`.
    public func subscribe(_ subscriber: any HubSubscriber, to topic: String) {
        state.withLockedValue { state in
            if Self.isPattern(topic) {
                state.prefixes[String(topic.dropLast()), default: [:]][subscriber.subscriberID] = subscriber
            } else {
                state.topics[topic, default: [:]][subscriber.subscriberID] = subscriber
            }
            let inserted = state.subscriptions[subscriber.subscriberID, default: []].insert(topic).inserted
            if inserted, !Self.isReserved(topic) { state.ownSubscriptions[subscriber.subscriberID, default: 0] += 1 }
        }
        observer?.hub(subscribed: subscriber.subscriberID, to: topic)
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

    /// Whether the subscriber held `topic`.
    @discardableResult
    public func unsubscribe(_ subscriberID: UInt64, from topic: String) -> Bool {
        let removed = state.withLockedValue { state -> Bool in
            Self.remove(subscriberID, from: topic, in: &state)
            let removed = state.subscriptions[subscriberID]?.remove(topic) != nil
            if state.subscriptions[subscriberID]?.isEmpty == true { state.subscriptions[subscriberID] = nil }
            if removed, !Self.isReserved(topic) {
                state.ownSubscriptions[subscriberID, default: 0] -= 1
                if state.ownSubscriptions[subscriberID] == 0 { state.ownSubscriptions[subscriberID] = nil }
            }
            return removed
        }
        if removed { observer?.hub(unsubscribed: subscriberID, from: [topic]) }
        return removed
    }

    /// Removes every subscription of a connection (it closed); returns what it held.
    @discardableResult
    public func unsubscribeAll(_ subscriberID: UInt64) -> Set<String> {
        let topics = state.withLockedValue { state -> Set<String> in
            let topics = state.subscriptions.removeValue(forKey: subscriberID) ?? []
            state.ownSubscriptions[subscriberID] = nil
            for topic in topics {
                Self.remove(subscriberID, from: topic, in: &state)
            }
            return topics
        }
        if !topics.isEmpty { observer?.hub(unsubscribed: subscriberID, from: Array(topics)) }
        return topics
    }

    /// Delivers `message` once to every subscriber of `topic` on this gateway and tells the
    /// observer (which sends it to the other nodes of a cluster); returns how many local
    /// subscribers there were.
    ///
    /// On a topic whose history is shared by a cluster (`TopicHistory.remote`), the history
    /// records it and delivers it to every node, this one included (`deliverRecorded`): the
    /// returned publication has no position yet (`publish(_:to:on:)` waits for it).
    /// `publish(_:to:)` for a message as a worker, an HTTP backend or the admin API gave it.
    @discardableResult
    public func publish(_ message: WebSocketMessage, to topic: String) -> Publication {
        publish(HubMessage(message), to: topic)
    }

    @discardableResult
    public func publish(_ message: HubMessage, to topic: String) -> Publication {
        if let history = history(for: topic), let remote = history.remote {
            remote.append(message, to: topic, settings: history.settings).whenFailure { _ in }
            return Publication(subscribers: subscribers(of: topic).count, position: nil)
        }
        let publication = publishLocally(message, to: topic)
        observer?.hub(published: message, to: topic)
        return publication
    }

    /// `publish`, with the publication's position once it is recorded (at once unless the
    /// topic's history is shared by a cluster); completes on `eventLoop`.
    public func publish(
        _ message: HubMessage,
        to topic: String,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<Publication> {
        guard let history = history(for: topic), let remote = history.remote else {
            return eventLoop.makeSucceededFuture(publish(message, to: topic))
        }
        let count = subscribers(of: topic).count
        return remote.append(message, to: topic, settings: history.settings)
            .hop(to: eventLoop)
            .map { Publication(subscribers: count, position: $0) }
    }

    /// A publication the cluster's shared history recorded, as it reaches this node (in
    /// offset order): delivered to the local subscribers with its offset.
    @discardableResult
    public func deliverRecorded(_ message: HubMessage, to topic: String, offset: UInt64) -> Int {
        deliver(message, to: subscribers(of: topic), topic: topic, offset: offset)
    }

    /// Delivers `message` once to every subscriber of `topic` (directly or by a pattern) on
    /// this gateway only — for messages that came from another node; on a topic with history
    /// it is recorded first and every subscriber gets it with its offset.
    @discardableResult
    public func publishLocally(_ message: HubMessage, to topic: String) -> Publication {
        // A shared history records and delivers through the cluster; what reaches this point
        // on such a topic came from a node that keeps none for it, and is delivered as it is.
        guard let history = history(for: topic), history.remote == nil else {
            return Publication(subscribers: deliver(message, to: subscribers(of: topic), topic: topic), position: nil)
        }
        let (position, count) = history.record(message, on: topic) { offset in
            deliver(message, to: subscribers(of: topic), topic: topic, offset: offset)
        }
        return Publication(subscribers: count, position: position)
    }

    private func subscribers(of topic: String) -> [any HubSubscriber] {
        state.withLockedValue { state -> [any HubSubscriber] in
            var found = state.topics[topic] ?? [:]
            if Self.isReserved(topic) { return Array(found.values) }
            for prefix in Self.patternPrefixes(of: topic) {
                if let subscribers = state.prefixes[prefix] { found.merge(subscribers) { first, _ in first } }
            }
            return Array(found.values)
        }
    }

    /// A recorded publication as a subscriber that does not speak the hub protocol (a worker
    /// route's connection) gets it: as published, a hub client's publish being an event with
    /// its offset.
    public static func rawForm(of entry: HistoryEntry) -> WebSocketMessage {
        guard entry.message.isEvent else { return entry.message.message }
        return WebSocketMessage(kind: .text, data: HubRouteService.event(entry.message.data, offset: entry.offset))
    }

    /// A recorded publication, as every subscriber gets it: hub clients as a `message` event
    /// with its offset; the others as it was published (a hub client's publish being an event,
    /// they get that with its offset too).
    private func deliver(
        _ message: HubMessage,
        to subscribers: [any HubSubscriber],
        topic: String,
        offset: UInt64
    ) -> Int {
        var raw = message.message
        if message.isEvent {
            raw = WebSocketMessage(kind: .text, data: HubRouteService.event(message.data, offset: offset))
        }
        if subscribers.count > 1 { raw.sharedCompression = SharedCompression() }
        var event: WebSocketMessage?
        // Ordered per loop by the loop's queue: the history's lock is held while these are
        // enqueued, so every loop gets a topic's publications in offset order.
        var byLoop: [ObjectIdentifier: (loop: any EventLoop, batch: [(any HubSubscriber, WebSocketMessage)])] = [:]
        for subscriber in subscribers {
            let form: WebSocketMessage
            if subscriber.speaksHubProtocol && !message.isEvent {
                if event == nil { event = HubRouteService.event(for: message, topic: topic, offset: offset) }
                form = event!
            } else {
                form = raw
            }
            guard let loop = subscriber.deliveryLoop else {
                subscriber.deliver(form, topic: topic, offset: offset)
                continue
            }
            byLoop[ObjectIdentifier(loop), default: (loop, [])].batch.append((subscriber, form))
        }
        for (loop, batch) in byLoop.values {
            loop.execute {
                for (subscriber, form) in batch { subscriber.deliver(form, topic: topic, offset: offset) }
            }
        }
        return subscribers.count
    }

    private func deliver(_ published: HubMessage, to subscribers: [any HubSubscriber], topic: String) -> Int {
        var message = published.message
        if subscribers.count > 1 && message.sharedCompression == nil {
            // Many sessions get the same bytes: let them share the compressed form too.
            message.sharedCompression = SharedCompression()
        }
        // Made once per publish, when a hub client is among the subscribers of a raw one.
        var event: WebSocketMessage?
        for subscriber in subscribers {
            if subscriber.speaksHubProtocol && !published.isEvent {
                if event == nil {
                    event = HubRouteService.event(wrapping: message, topic: topic)
                    event?.sharedCompression = SharedCompression()
                }
                subscriber.deliver(event!)
            } else {
                subscriber.deliver(message)
            }
        }
        return subscribers.count
    }

    /// Closes every subscriber of a reserved topic, here and (through the observer) on the
    /// other nodes of a cluster; returns how many were here.
    @discardableResult
    public func closeSubscribers(of topic: String, code: UInt16, reason: String) -> Int {
        let count = closeSubscribersLocally(of: topic, code: code, reason: reason)
        observer?.hub(closedSubscribersOf: topic, code: code, reason: reason)
        return count
    }

    /// `closeSubscribers`, on this gateway only (what another node asked for); `anyTopic` for a
    /// topic whose subscribers must resume (a cluster node that cannot fill a gap in its history).
    @discardableResult
    public func closeSubscribersLocally(of topic: String, code: UInt16, reason: String, anyTopic: Bool = false) -> Int {
        guard anyTopic || Self.isReserved(topic) else { return 0 }
        let found = state.withLockedValue { Array(($0.topics[topic] ?? [:]).values) }
        for subscriber in found { subscriber.closeRequested(code: code, reason: reason) }
        return found.count
    }
}

import NIOConcurrencyHelpers

/// What the hub holds, for the admin API, presence and the per-connection limit.
extension Hub {
    /// Every subscription (topic or pattern) with its subscribers' ids: what presence restores
    /// after the cluster's store lost it.
    public func subscriptionsByTopic() -> [String: [UInt64]] {
        state.withLockedValue { state in
            var result: [String: [UInt64]] = [:]
            for (id, topics) in state.subscriptions {
                for topic in topics { result[topic, default: []].append(id) }
            }
            return result
        }
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
            if Self.isReserved(topic) { return found }
            for prefix in Self.patternPrefixes(of: topic) {
                if let subscribers = state.prefixes[prefix] { found.formUnion(subscribers.keys) }
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

    /// How many subscriptions of its own a connection holds (reserved topics do not count), and
    /// whether `topic` is one of its subscriptions.
    public func ownSubscriptions(of subscriberID: UInt64, holding topic: String) -> (count: Int, holds: Bool) {
        state.withLockedValue { state in
            (state.ownSubscriptions[subscriberID] ?? 0, state.subscriptions[subscriberID]?.contains(topic) ?? false)
        }
    }
}

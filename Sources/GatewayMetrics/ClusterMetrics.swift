import Metrics

/// The cluster link (docs/cluster.md): whether Redis is reachable, and what crossed it.
public struct ClusterMetrics: Sendable {
    private let linkUp: Gauge
    private let sent: Counter
    private let received: Counter
    private let lostLinkDown: Counter
    private let lostBacklog: Counter
    private let connects: Counter

    public init() {
        linkUp = Gauge(label: "wssgate_cluster_link_up")
        sent = Counter(label: "wssgate_cluster_messages_sent_total")
        received = Counter(label: "wssgate_cluster_messages_received_total")
        lostLinkDown = Counter(label: "wssgate_cluster_messages_lost_total", dimensions: [("reason", "link_down")])
        lostBacklog = Counter(label: "wssgate_cluster_messages_lost_total", dimensions: [("reason", "backlog")])
        connects = Counter(label: "wssgate_cluster_connects_total")
    }

    public func linked(_ up: Bool) {
        linkUp.record(up ? 1 : 0)
        if up { connects.increment() }
    }

    /// A publish went to the other nodes.
    public func forwarded() { sent.increment() }
    /// A publish from another node was delivered here.
    public func arrived() { received.increment() }
    /// A publish for the other nodes was dropped: Redis unreachable, or too much unanswered.
    public func lost(backlog: Bool) { backlog ? lostBacklog.increment() : lostLinkDown.increment() }
}

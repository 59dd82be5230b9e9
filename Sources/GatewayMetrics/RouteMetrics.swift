import Metrics
import NIOConcurrencyHelpers

/// One route's metrics, made once at start so that the data path only bumps counters that
/// already exist (swift-metrics handlers; Prometheus's are atomics).
public final class RouteMetrics: Sendable {
    public let route: String
    private let active: Meter
    private let opened: Counter
    private let messagesReceived: Counter
    private let messagesSent: Counter
    private let bytesReceived: Counter
    private let bytesSent: Counter
    /// Pushed messages the overflow policy did not deliver.
    private let droppedMessages: Counter
    /// Sessions closed because their send queue overflowed.
    private let overflows: Counter
    private let rateLimits: Counter
    private let closedByCode = NIOLockedValueBox<[String: Counter]>([:])

    public init(route: String) {
        self.route = route
        let dimensions = [("route", route)]
        active = Meter(label: "wssgate_connections_active", dimensions: dimensions)
        opened = Counter(label: "wssgate_connections_opened_total", dimensions: dimensions)
        messagesReceived = Counter(label: "wssgate_messages_received_total", dimensions: dimensions)
        messagesSent = Counter(label: "wssgate_messages_sent_total", dimensions: dimensions)
        bytesReceived = Counter(label: "wssgate_received_bytes_total", dimensions: dimensions)
        bytesSent = Counter(label: "wssgate_sent_bytes_total", dimensions: dimensions)
        droppedMessages = Counter(label: "wssgate_send_queue_dropped_messages_total", dimensions: dimensions)
        overflows = Counter(label: "wssgate_send_queue_overflows_total", dimensions: dimensions)
        rateLimits = Counter(label: "wssgate_limit_rejections_total", dimensions: [("limit", "messages_per_second")])
    }

    /// A connection of this route was upgraded (or joined to its upstream).
    public func didOpen() {
        opened.increment()
        active.increment()
    }

    public func received(bytes: Int) {
        messagesReceived.increment()
        bytesReceived.increment(by: Int64(bytes))
    }

    public func sent(bytes: Int) {
        messagesSent.increment()
        bytesSent.increment(by: Int64(bytes))
    }

    public func dropped(_ count: Int) {
        droppedMessages.increment(by: Int64(count))
    }

    /// A session was closed because its send queue overflowed.
    public func overflowed() {
        overflows.increment()
    }

    /// A session went over `max_messages_per_second` and is closed with 1008.
    public func rateLimited() {
        rateLimits.increment()
    }

    /// A connection of this route has closed; `code` is the close code (sent or received),
    /// "none" when TCP ended without one, "proxied" when the gateway did not read its frames.
    public func closed(code: String) {
        let counter = closedByCode.withLockedValue { counters in
            if let existing = counters[code] { return existing }
            let made = Counter(
                label: "wssgate_connections_closed_total",
                dimensions: [("route", route), ("code", code)]
            )
            counters[code] = made
            return made
        }
        counter.increment()
        active.decrement()
    }
}

import Metrics

/// A worker route's supervision: instances linked now, restarts, link failures.
public struct WorkerMetrics: Sendable {
    private let instancesUp: Meter
    private let restarts: Counter
    private let linkErrors: Counter
    private let lostMessages: Counter
    /// The route's `wssgate_send_queue_dropped_messages_total` (the same series its sessions
    /// count in: the registry keeps one per label and dimensions).
    private let droppedMessages: Counter
    private let wakes: Counter
    private let idleStops: Counter
    private let autoResponses: Counter

    public init(route: String) {
        let dimensions = [("route", route)]
        instancesUp = Meter(label: "wssgate_worker_instances_up", dimensions: dimensions)
        restarts = Counter(label: "wssgate_worker_restarts_total", dimensions: dimensions)
        linkErrors = Counter(label: "wssgate_worker_link_errors_total", dimensions: dimensions)
        lostMessages = Counter(label: "wssgate_worker_messages_lost_total", dimensions: dimensions)
        droppedMessages = Counter(label: "wssgate_send_queue_dropped_messages_total", dimensions: dimensions)
        wakes = Counter(label: "wssgate_worker_wakes_total", dimensions: dimensions)
        idleStops = Counter(label: "wssgate_worker_idle_stops_total", dimensions: dimensions)
        autoResponses = Counter(label: "wssgate_worker_auto_responses_total", dimensions: dimensions)
    }

    /// An instance finished its hello and takes connections.
    public func linked() { instancesUp.increment() }
    /// A linked instance's link is gone.
    public func unlinked() { instancesUp.decrement() }
    /// A supervised instance exited and is started again.
    public func restarted() { restarts.increment() }
    /// A link failed: an I/O error, a protocol violation, or no hello in time.
    public func linkFailed() { linkErrors.increment() }
    /// Messages sent to an instance that died before returning credit for them (at most once).
    public func lost(_ messages: Int) { lostMessages.increment(by: messages) }
    /// A message for a client found no room among those kept before its upgrade completed.
    public func droppedBeforeOpen() { droppedMessages.increment() }
    /// A hibernated route started an instance because a connection needed one.
    public func woke() { wakes.increment() }
    /// An instance beyond `min_instances` was stopped for idleness.
    public func idleStopped() { idleStops.increment() }
    /// A message was answered by the route's auto-responses.
    public func autoResponded() { autoResponses.increment() }
}

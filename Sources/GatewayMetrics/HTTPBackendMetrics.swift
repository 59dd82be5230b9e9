import Metrics

/// An `http` route's requests to its app.
public struct HTTPBackendMetrics: Sendable {
    private let requests: Counter
    private let retries: Counter
    private let failures: Counter
    private let unavailable: Counter
    private let lost: Counter

    public init(route: String) {
        let dimensions = [("route", route)]
        requests = Counter(label: "wssgate_http_backend_requests_total", dimensions: dimensions)
        retries = Counter(label: "wssgate_http_backend_retries_total", dimensions: dimensions)
        failures = Counter(label: "wssgate_http_backend_failures_total", dimensions: dimensions)
        unavailable = Counter(label: "wssgate_http_backend_unavailable_closes_total", dimensions: dimensions)
        lost = Counter(label: "wssgate_http_backend_messages_lost_total", dimensions: dimensions)
    }

    /// A request was posted (every attempt counts).
    public func requested() { requests.increment() }
    /// A request is posted again after a failure.
    public func retried() { retries.increment() }
    /// A request got no answer, an error status, or an answer that could not be carried out.
    public func failed() { failures.increment() }
    /// A client was closed with `unavailable_close_code`.
    public func closedUnavailable() { unavailable.increment() }
    /// Client messages that never reached the app (queued when their client was closed for it).
    public func lost(_ messages: Int) { lost.increment(by: messages) }
}

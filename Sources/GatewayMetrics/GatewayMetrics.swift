import Metrics
import NIOConcurrencyHelpers

/// The gateway-wide metrics (docs/metrics.md lists them all): handshake failures, TLS handshake
/// time, reloads, worker supervision, limits, and build information. Per-route ones are in
/// `RouteMetrics`.
public final class GatewayMetrics: Sendable {
    /// By route name; a route added by a reload gets its metrics on its first connection.
    private let routes = NIOLockedValueBox<[String: RouteMetrics]>([:])
    private let counters = NIOLockedValueBox<[String: Counter]>([:])
    private let timers = NIOLockedValueBox<[String: Timer]>([:])

    public init(routes: [String], version: String) {
        self.routes.withLockedValue { table in
            for route in routes { table[route] = RouteMetrics(route: route) }
        }
        Gauge(label: "wssgate_build_info", dimensions: [("version", version)]).record(1)
    }

    public func route(_ name: String) -> RouteMetrics? {
        routes.withLockedValue { table in
            if let existing = table[name] { return existing }
            let made = RouteMetrics(route: name)
            table[name] = made
            return made
        }
    }

    /// A counter with these labels, made on first use and kept.
    private func counter(_ label: String, _ dimensions: [(String, String)]) -> Counter {
        let key = label + dimensions.map { "|\($0.0)=\($0.1)" }.joined()
        return counters.withLockedValue { counters in
            if let existing = counters[key] { return existing }
            let made = Counter(label: label, dimensions: dimensions)
            counters[key] = made
            return made
        }
    }

    /// An upgrade or connection refused before it became a WebSocket: `reason` is `tls` (the
    /// TLS handshake failed) or the HTTP status answered (`http_404`, `http_429`, …).
    public func handshakeFailed(reason: String) {
        counter("wssgate_handshake_failures_total", [("reason", reason)]).increment()
    }

    public func tlsHandshakeCompleted(listener: String, nanoseconds: Int64) {
        let timer = timers.withLockedValue { timers in
            if let existing = timers[listener] { return existing }
            let made = Timer(label: "wssgate_tls_handshake_duration_seconds", dimensions: [("listener", listener)])
            timers[listener] = made
            return made
        }
        timer.recordNanoseconds(nanoseconds)
    }

    /// A TLS connection on which ALPN chose HTTP/2 (listeners with `tls.http2`).
    public func http2ConnectionOpened(listener: String) {
        counter("wssgate_http2_connections_total", [("listener", listener)]).increment()
    }

    /// A completed upgrade, by the protocol that carried it: `http/1.1` (an Upgrade request on
    /// its own connection) or `h2` (an extended CONNECT stream, RFC 8441).
    public func upgraded(over httpProtocol: String) {
        counter("wssgate_upgrades_total", [("protocol", httpProtocol)]).increment()
    }

    public func reloaded(success: Bool) {
        counter("wssgate_config_reloads_total", [("result", success ? "success" : "failure")]).increment()
    }

    /// A limit turned a client away: `limit` names it (`connections`, `connections_per_ip`, …).
    public func limitHit(_ limit: String) {
        counter("wssgate_limit_rejections_total", [("limit", limit)]).increment()
    }
}

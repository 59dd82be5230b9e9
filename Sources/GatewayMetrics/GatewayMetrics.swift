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

    /// What is configured, for the series that exist from the start.
    public struct Shape: Sendable {
        public var routes: [String]
        public var tlsListeners: [String]
        public var http2Listeners: [String]
        public var acme: Bool
        public init(routes: [String], tlsListeners: [String], http2Listeners: [String], acme: Bool) {
            self.routes = routes
            self.tlsListeners = tlsListeners
            self.http2Listeners = http2Listeners
            self.acme = acme
        }
    }

    /// Makes, at zero, the series that would otherwise appear only when first counted, so a
    /// dashboard or an alert sees every metric of what is configured from the first scrape:
    /// closes (code 1000) per route, refusals (`http_400`, and `tls` with TLS listeners),
    /// upgrades by protocol, TLS handshake times per TLS listener, reloads, ACME orders.
    public func prepare(_ shape: Shape) {
        for route in shape.routes {
            _ = counter("wssgate_connections_closed_total", [("route", route), ("code", "1000")])
        }
        _ = counter("wssgate_handshake_failures_total", [("reason", "http_400")])
        if !shape.tlsListeners.isEmpty { _ = counter("wssgate_handshake_failures_total", [("reason", "tls")]) }
        _ = counter("wssgate_upgrades_total", [("protocol", "http/1.1")])
        if !shape.http2Listeners.isEmpty { _ = counter("wssgate_upgrades_total", [("protocol", "h2")]) }
        for listener in shape.http2Listeners {
            _ = counter("wssgate_http2_connections_total", [("listener", listener)])
        }
        for listener in shape.tlsListeners { _ = timer(listener) }
        for result in ["success", "failure"] {
            _ = counter("wssgate_config_reloads_total", [("result", result)])
            if shape.acme { _ = counter("wssgate_acme_orders_total", [("result", result)]) }
        }
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
        timer(listener).recordNanoseconds(nanoseconds)
    }

    private func timer(_ listener: String) -> Timer {
        timers.withLockedValue { timers in
            if let existing = timers[listener] { return existing }
            let made = Timer(label: "wssgate_tls_handshake_duration_seconds", dimensions: [("listener", listener)])
            timers[listener] = made
            return made
        }
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

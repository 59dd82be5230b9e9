/// Every metric the gateway exports, with the `# HELP` text Prometheus shows for it. The
/// exporter writes the text (wssgate's `DocumentedMetricsFactory`), and docs/metrics.md lists
/// the same names, types and labels (a test checks the two agree).
public enum MetricCatalog {
    public enum Kind: String, Sendable { case counter, gauge, histogram }

    public struct Entry: Sendable {
        public var name: String
        public var kind: Kind
        public var labels: [String]
        public var help: String
    }

    public static func help(for name: String) -> String? { byName[name]?.help }

    private static let byName = Dictionary(uniqueKeysWithValues: entries.map { ($0.name, $0) })

    public static let entries: [Entry] = [
        .init(
            name: "wssgate_build_info",
            kind: .gauge,
            labels: ["version"],
            help: "Always 1; the version is the label."
        ),
        .init(
            name: "wssgate_connections_active",
            kind: .gauge,
            labels: ["route"],
            help: "WebSocket connections open now."
        ),
        .init(
            name: "wssgate_connections_opened_total",
            kind: .counter,
            labels: ["route"],
            help: "Upgrades completed."
        ),
        .init(
            name: "wssgate_connections_closed_total",
            kind: .counter,
            labels: ["route", "code"],
            help: "Connections closed, by close code (none: TCP ended without one; proxied: pass-through)."
        ),
        .init(
            name: "wssgate_messages_received_total",
            kind: .counter,
            labels: ["route"],
            help: "Whole messages from clients."
        ),
        .init(
            name: "wssgate_messages_sent_total",
            kind: .counter,
            labels: ["route"],
            help: "Whole messages to clients."
        ),
        .init(
            name: "wssgate_received_bytes_total",
            kind: .counter,
            labels: ["route"],
            help: "Payload bytes of messages from clients, after decompression."
        ),
        .init(
            name: "wssgate_sent_bytes_total",
            kind: .counter,
            labels: ["route"],
            help: "Payload bytes of messages to clients, before compression."
        ),
        .init(
            name: "wssgate_send_queue_dropped_messages_total",
            kind: .counter,
            labels: ["route"],
            help: "Pushed messages not delivered because the client's send queue was full."
        ),
        .init(
            name: "wssgate_send_queue_overflows_total",
            kind: .counter,
            labels: ["route"],
            help: "Sessions closed by the close overflow policy."
        ),
        .init(
            name: "wssgate_handshake_failures_total",
            kind: .counter,
            labels: ["reason"],
            help: "Connections that did not become WebSockets: tls, proxy_protocol or http_<status>."
        ),
        .init(
            name: "wssgate_upgrades_total",
            kind: .counter,
            labels: ["protocol"],
            help: "Completed upgrades by what carried them: http/1.1 or h2 (RFC 8441)."
        ),
        .init(
            name: "wssgate_http2_connections_total",
            kind: .counter,
            labels: ["listener"],
            help: "TLS connections on which ALPN chose HTTP/2."
        ),
        .init(
            name: "wssgate_tls_handshake_duration_seconds",
            kind: .histogram,
            labels: ["listener"],
            help: "Time from accept to the end of the TLS handshake."
        ),
        .init(
            name: "wssgate_tls_certificate_expiry_timestamp_seconds",
            kind: .gauge,
            labels: ["listener"],
            help: "notAfter of the certificate an ACME listener serves, as a Unix time."
        ),
        .init(
            name: "wssgate_acme_orders_total",
            kind: .counter,
            labels: ["result"],
            help: "ACME orders completed (success) or failed (failure)."
        ),
        .init(
            name: "wssgate_worker_instances_up",
            kind: .gauge,
            labels: ["route"],
            help: "Worker instances linked now."
        ),
        .init(
            name: "wssgate_worker_restarts_total",
            kind: .counter,
            labels: ["route"],
            help: "Supervised worker processes restarted after exiting."
        ),
        .init(
            name: "wssgate_worker_link_errors_total",
            kind: .counter,
            labels: ["route"],
            help: "Worker links that failed: I/O errors, protocol violations, no hello in time."
        ),
        .init(
            name: "wssgate_worker_messages_lost_total",
            kind: .counter,
            labels: ["route"],
            help: "Messages sent to an instance whose link ended before it returned credit for them."
        ),
        .init(
            name: "wssgate_worker_wakes_total",
            kind: .counter,
            labels: ["route"],
            help: "Instances of a hibernating route started because a connection needed one."
        ),
        .init(
            name: "wssgate_worker_idle_stops_total",
            kind: .counter,
            labels: ["route"],
            help: "Instances stopped after idle_stop without traffic."
        ),
        .init(
            name: "wssgate_worker_auto_responses_total",
            kind: .counter,
            labels: ["route"],
            help: "Messages answered by the route's auto_response without a worker."
        ),
        .init(
            name: "wssgate_http_backend_requests_total",
            kind: .counter,
            labels: ["route"],
            help: "Event requests posted to an http route's app, every attempt counted."
        ),
        .init(
            name: "wssgate_http_backend_retries_total",
            kind: .counter,
            labels: ["route"],
            help: "Event requests posted again after a failure."
        ),
        .init(
            name: "wssgate_http_backend_failures_total",
            kind: .counter,
            labels: ["route"],
            help: "Event requests with no answer, an error status, or commands that could not be carried out."
        ),
        .init(
            name: "wssgate_http_backend_unavailable_closes_total",
            kind: .counter,
            labels: ["route"],
            help: "Clients closed with unavailable_close_code."
        ),
        .init(
            name: "wssgate_http_backend_messages_lost_total",
            kind: .counter,
            labels: ["route"],
            help: "Client messages that never reached the app because their client was closed as unavailable."
        ),
        .init(
            name: "wssgate_limit_rejections_total",
            kind: .counter,
            labels: ["limit"],
            help: "Clients turned away by a limit."
        ),
        .init(
            name: "wssgate_config_reloads_total",
            kind: .counter,
            labels: ["result"],
            help: "Reloads: success, or failure (the running configuration stayed)."
        ),
        .init(
            name: "wssgate_cluster_link_up",
            kind: .gauge,
            labels: [],
            help: "1 while this node reaches Redis and is registered, else 0."
        ),
        .init(
            name: "wssgate_cluster_connects_total",
            kind: .counter,
            labels: [],
            help: "Times the cluster link came up."
        ),
        .init(
            name: "wssgate_cluster_messages_sent_total",
            kind: .counter,
            labels: [],
            help: "Hub publishes sent to the other nodes through Redis."
        ),
        .init(
            name: "wssgate_cluster_messages_received_total",
            kind: .counter,
            labels: [],
            help: "Publishes from other nodes delivered here."
        ),
        .init(
            name: "wssgate_cluster_messages_lost_total",
            kind: .counter,
            labels: ["reason"],
            help: "Publishes dropped: link_down (Redis unreachable) or backlog (too much unacknowledged)."
        ),
    ]
}

import GatewayMetrics
import Metrics
import MetricsTestKit
import XCTest

final class GatewayMetricsTests: XCTestCase {
    /// swift-metrics is bootstrapped once per process; every test here shares this one.
    static let recorder: TestMetrics = {
        let metrics = TestMetrics()
        MetricsSystem.bootstrap(metrics)
        return metrics
    }()

    func testRouteCountersAndCloseCodes() throws {
        let recorder = Self.recorder
        let route = RouteMetrics(route: "r1")
        route.didOpen()
        route.didOpen()
        route.received(bytes: 10)
        route.sent(bytes: 7)
        route.dropped(3)
        route.overflowed()
        route.closed(code: "1000")
        route.closed(code: "1013")
        XCTAssertEqual(try recorder.expectCounter("wssgate_connections_opened_total", [("route", "r1")]).totalValue, 2)
        XCTAssertEqual(try recorder.expectMeter("wssgate_connections_active", [("route", "r1")]).lastValue, 0)
        XCTAssertEqual(try recorder.expectCounter("wssgate_received_bytes_total", [("route", "r1")]).totalValue, 10)
        XCTAssertEqual(try recorder.expectCounter("wssgate_sent_bytes_total", [("route", "r1")]).totalValue, 7)
        XCTAssertEqual(
            try recorder.expectCounter("wssgate_send_queue_dropped_messages_total", [("route", "r1")]).totalValue,
            3
        )
        XCTAssertEqual(
            try recorder.expectCounter("wssgate_connections_closed_total", [("route", "r1"), ("code", "1013")])
                .totalValue,
            1
        )
    }

    func testGatewayCountersAreMadeOnceAndKept() throws {
        let recorder = Self.recorder
        let metrics = GatewayMetrics(routes: ["a"], version: "9.9")
        metrics.handshakeFailed(reason: "tls")
        metrics.handshakeFailed(reason: "tls")
        metrics.handshakeFailed(reason: "http_404")
        metrics.reloaded(success: false)
        XCTAssertEqual(
            try recorder.expectCounter("wssgate_handshake_failures_total", [("reason", "tls")]).totalValue,
            2
        )
        XCTAssertEqual(
            try recorder.expectCounter("wssgate_config_reloads_total", [("result", "failure")]).totalValue,
            1
        )
        XCTAssertEqual(try recorder.expectGauge("wssgate_build_info", [("version", "9.9")]).lastValue, 1)
        XCTAssertTrue(metrics.route("a") === metrics.route("a"))
    }
}

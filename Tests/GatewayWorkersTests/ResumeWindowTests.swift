import GatewayCore
import NIOCore
import NIOEmbedded
import NIOWebSocket
import XCTest

@testable import GatewayWorkers

/// `resume_timeout` counts from the loss of the last instance that kept a connection: instances
/// that take it and die at once do not buy it more time.
final class ResumeWindowTests: XCTestCase {
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    private let timeout = TimeAmount.seconds(10)

    func testANeverLostConnectionHasTheWholeTimeout() {
        var window = ResumeWindow()
        XCTAssertEqual(window.remaining(of: timeout, now: start), timeout)
    }

    func testInstancesThatDieAtOnceDoNotStartTheCountAgain() {
        var window = ResumeWindow()
        window.attached(now: start)
        window.lost(now: start + .seconds(60))
        XCTAssertEqual(
            window.remaining(of: timeout, now: start + .seconds(60)),
            timeout,
            "kept for a minute: a new count"
        )
        for second in [63, 66, 69] {
            window.attached(now: start + .seconds(Int64(second)))
            window.lost(now: start + .seconds(Int64(second)) + .milliseconds(5))
            XCTAssertEqual(
                window.remaining(of: timeout, now: start + .seconds(Int64(second)) + .milliseconds(5)),
                .seconds(70 - Int64(second)) - .milliseconds(5)
            )
        }
        window.attached(now: start + .seconds(71))
        window.lost(now: start + .seconds(71))
        XCTAssertEqual(window.remaining(of: timeout, now: start + .seconds(71)), .zero, "the ten seconds are up")
        window.attached(now: start + .seconds(72))
        window.lost(now: start + .seconds(90))
        XCTAssertEqual(window.remaining(of: timeout, now: start + .seconds(90)), timeout, "kept long enough again")
    }

    /// A connection whose instances keep dying right after taking it is closed with 1013 once
    /// the timeout has passed since the first loss, however many come.
    func testAFlappingWorkerDoesNotHoldItsClientsForEver() {
        var state = WorkerConnectionState(connection: 7, fields: [], verdictRequired: false)
        _ = state.sessionOpened()
        let channel = EmbeddedChannel()
        defer { XCTAssertNoThrow(try channel.finish(acceptAlreadyClosed: true)) }
        func link(_ id: UInt64) -> WorkerLink {
            WorkerLink(
                id: id,
                instance: 0,
                instanceName: "flapping-0",
                channel: channel,
                initialCredit: 8192,
                maxFrameBytes: 1 << 20,
                version: 2
            )
        }
        var now = start
        var timers: [TimeAmount] = []
        for id in 1...5 {
            let current = link(UInt64(id))
            _ = state.attached(to: current, now: now)
            now = now + .milliseconds(10)
            _ = state.orphaned(from: current, now: now)
            for action in state.noInstance(timeout: timeout, now: now) {
                if case .startTimer(.instance, let delay) = action { timers.append(delay) }
            }
            now = now + .seconds(2)
        }
        XCTAssertEqual(timers.first, timeout)
        XCTAssertEqual(timers.count, 5)
        XCTAssertTrue(zip(timers, timers.dropFirst()).allSatisfy { $0 > $1 }, "each wait is shorter: \(timers)")
        let current = link(6)
        _ = state.attached(to: current, now: now)
        _ = state.orphaned(from: current, now: now)
        let actions = state.noInstance(timeout: timeout, now: now)
        XCTAssertTrue(
            actions.contains { if case .closeClient(WebSocketErrorCode.tryAgainLater, _) = $0 { true } else { false } },
            "\(actions)"
        )
    }
}

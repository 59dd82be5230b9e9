import GatewayCore
import NIOCore
import NIOWebSocket
import XCTest

@testable import GatewayProxy

/// The closing handshakes and the keepalive of a `frames` relay, as the relay is told to act.
final class FramesRelayStateTests: XCTestCase {
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    func testTheUpstreamClosingFirstIsAnsweredAndRelayedOnce() {
        var state = FramesRelayState(now: start)
        XCTAssertEqual(state.upstreamSentClose(), .answerAndRelay)
        XCTAssertFalse(state.relaysMessages)
        XCTAssertFalse(state.readsUpstreamFrames)
        // The client's close that follows is the relay's own doing: nothing goes upstream again.
        XCTAssertFalse(state.clientClosed())
        XCTAssertEqual(state.upstreamSentClose(), .ignore)
        // The upstream ending TCP after its Close is no loss.
        XCTAssertFalse(state.upstreamClosed())
    }

    func testTheClientClosingFirstWaitsForTheUpstreamsAnswer() {
        var state = FramesRelayState(now: start)
        XCTAssertTrue(state.clientClosed())
        XCTAssertFalse(state.clientClosed())
        XCTAssertFalse(state.relaysMessages)
        XCTAssertTrue(state.readsUpstreamFrames, "the upstream's Close must still be read")
        XCTAssertEqual(state.upstreamSentClose(), .closeTCP)
        XCTAssertFalse(state.upstreamClosed())
    }

    func testTCPEndingWhileOpenIsALossOnlyOnce() {
        var state = FramesRelayState(now: start)
        XCTAssertTrue(state.upstreamClosed())
        XCTAssertFalse(state.upstreamClosed())
        XCTAssertFalse(state.clientClosed(), "a lost upstream gets no Close")
        XCTAssertFalse(state.upstreamFailed())
    }

    func testAFailureIsActedOnOnceAndIsNoLossAfterwards() {
        var state = FramesRelayState(now: start)
        XCTAssertTrue(state.upstreamFailed())
        XCTAssertFalse(state.upstreamFailed())
        XCTAssertFalse(state.upstreamClosed(), "the client was already told")
    }

    func testACloseBeforeTheSessionOpensIsKeptForIt() {
        var state = FramesRelayState(now: start)
        state.clientCloseDeferred(code: .init(code: 4001), reason: "first")
        state.clientCloseDeferred(code: .init(code: 4002), reason: "second")
        let deferred = state.takeDeferredClientClose()
        XCTAssertEqual(deferred?.0, .init(code: 4001))
        XCTAssertEqual(deferred?.1, "first")
        XCTAssertNil(state.takeDeferredClientClose())
    }

    func testKeepalivePingsAfterSilenceAndLosesAnUpstreamThatDoesNotAnswer() {
        var state = FramesRelayState(now: start)
        let interval = TimeAmount.seconds(30)
        let timeout = TimeAmount.seconds(10)
        XCTAssertEqual(
            state.keepaliveFired(now: start + .seconds(20), interval: interval, timeout: timeout),
            .wait(.seconds(10))
        )
        XCTAssertEqual(
            state.keepaliveFired(now: start + .seconds(30), interval: interval, timeout: timeout),
            .ping(timeout)
        )
        // Anything heard answers the ping.
        state.heard(now: start + .seconds(31))
        XCTAssertEqual(
            state.keepaliveFired(now: start + .seconds(40), interval: interval, timeout: timeout),
            .wait(.seconds(21))
        )
        XCTAssertEqual(
            state.keepaliveFired(now: start + .seconds(61), interval: interval, timeout: timeout),
            .ping(timeout)
        )
        XCTAssertEqual(
            state.keepaliveFired(now: start + .seconds(65), interval: interval, timeout: timeout),
            .wait(.seconds(6))
        )
        XCTAssertEqual(state.keepaliveFired(now: start + .seconds(71), interval: interval, timeout: timeout), .lost)
        XCTAssertFalse(state.upstreamClosed(), "the loss was reported by the keepalive")
        XCTAssertEqual(state.keepaliveFired(now: start + .seconds(80), interval: interval, timeout: timeout), .none)
    }
}

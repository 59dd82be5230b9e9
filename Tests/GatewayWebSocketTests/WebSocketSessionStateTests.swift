import GatewayCore
import NIOCore
import NIOWebSocket
import XCTest

@testable import GatewayWebSocket

/// The session's rules without a channel: time is a deadline the test moves.
final class WebSocketSessionStateTests: XCTestCase {
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    private func state(_ limits: WebSocketLimits = .init(), compression: Bool = false) -> WebSocketSessionState {
        WebSocketSessionState(limits: limits, compression: compression, now: start)
    }

    private func frame(
        _ state: inout WebSocketSessionState,
        _ opcode: WebSocketOpcode,
        masked: Bool = true,
        rsv1: Bool = false,
        rsv2: Bool = false,
        at now: NIODeadline? = nil
    ) -> WebSocketSessionState.FrameAction {
        state.frameArrived(opcode: opcode, masked: masked, rsv1: rsv1, rsv2: rsv2, rsv3: false, now: now ?? start)
    }

    func testTheFrameSequenceOfRFC6455() {
        var session = state()
        XCTAssertEqual(frame(&session, .text), .startMessage(.text, compressed: false))
        XCTAssertEqual(
            frame(&session, .binary),
            .fail(.protocolError, "new message before the previous one ended")
        )
        session = state()
        XCTAssertEqual(frame(&session, .continuation), .fail(.protocolError, "continuation without a message"))
        session = state()
        XCTAssertEqual(frame(&session, .binary), .startMessage(.binary, compressed: false))
        XCTAssertEqual(frame(&session, .ping), .sendPong, "control frames may come between fragments")
        XCTAssertEqual(frame(&session, .continuation), .continueMessage(compressed: false))
        XCTAssertTrue(session.messageCompleted(bytes: 3, now: start))
        XCTAssertEqual(frame(&session, .continuation), .fail(.protocolError, "continuation without a message"))
        XCTAssertEqual(session.statistics.messagesIn, 1)
        XCTAssertEqual(session.statistics.bytesIn, 3)
    }

    func testMaskingAndReservedBits() {
        var session = state()
        XCTAssertEqual(frame(&session, .text, masked: false), .fail(.protocolError, "frame not masked"))
        XCTAssertEqual(frame(&session, .text, rsv2: true), .fail(.protocolError, "reserved bit set"))
        XCTAssertEqual(
            frame(&session, .text, rsv1: true),
            .fail(.protocolError, "RSV1 set without permessage-deflate")
        )
        XCTAssertEqual(frame(&session, .ping, rsv1: true), .fail(.protocolError, "RSV1 set on a control frame"))
        XCTAssertEqual(
            frame(&session, WebSocketOpcode(encodedWebSocketOpcode: 3)!),
            .fail(.protocolError, "reserved opcode")
        )
        var compressed = state(compression: true)
        XCTAssertEqual(frame(&compressed, .text, rsv1: true), .startMessage(.text, compressed: true))
        XCTAssertEqual(
            frame(&compressed, .continuation, rsv1: true),
            .fail(.protocolError, "RSV1 set on a continuation frame")
        )
        XCTAssertEqual(frame(&compressed, .continuation), .continueMessage(compressed: true))
    }

    func testOurCloseWaitsForTheClientsAndIgnoresTheRest() {
        var session = state()
        XCTAssertTrue(session.closeRequested(code: .goingAway, reason: "bye"))
        XCTAssertFalse(session.closeRequested(code: .normalClosure, reason: "again"), "one Close only")
        XCTAssertEqual(session.phase, .closeSent)
        XCTAssertEqual(frame(&session, .text), .ignore)
        XCTAssertEqual(frame(&session, .text, masked: false), .ignore, "nothing is judged after our Close")
        XCTAssertEqual(frame(&session, .connectionClose), .closeTCP)
        session.closeAnswered(code: .goingAway)
        XCTAssertEqual(session.phase, .closed)
        XCTAssertFalse(session.closeTimerFired(), "answered: the timer has nothing to do")
        XCTAssertEqual(session.statistics.closedBy, "server")
        XCTAssertEqual(session.statistics.closeCodeSent, .goingAway)
        XCTAssertEqual(session.closeReason, "bye")
    }

    func testAnUnansweredCloseDropsTCPAtTheTimeout() {
        var session = state()
        XCTAssertFalse(session.closeTimerFired(), "no close started")
        XCTAssertTrue(session.closeRequested(code: .policyViolation, reason: ""))
        XCTAssertTrue(session.closeTimerFired())
        XCTAssertEqual(session.phase, .closed)
    }

    func testTheClientsCloseIsEchoedAndItsReasonKept() {
        var session = state()
        XCTAssertEqual(frame(&session, .text), .startMessage(.text, compressed: false))
        XCTAssertEqual(frame(&session, .connectionClose), .readClose)
        session.closeFrameArrived(code: WebSocketErrorCode(code: 4000), reason: "done")
        XCTAssertNil(session.assembling, "a message cut by the Close is dropped")
        XCTAssertEqual(session.statistics.closeCodeReceived, WebSocketErrorCode(code: 4000))
        XCTAssertEqual(session.statistics.closeCodeSent, WebSocketErrorCode(code: 4000), "echoed")
        XCTAssertEqual(session.statistics.closedBy, "client")
        XCTAssertEqual(session.closeReason, "done")
        XCTAssertFalse(session.closeRequested(code: .goingAway, reason: "late"))
        XCTAssertEqual(session.closeReason, "done", "the client's reason is what the application hears")
    }

    func testTheCloseIsReportedOnce() {
        var session = state()
        XCTAssertTrue(session.channelClosed())
        XCTAssertFalse(session.channelClosed())
        XCTAssertNil(session.closeCode, "TCP went without a Close")
    }

    func testKeepalivePingsASilentClientAndGivesUpWithoutAnAnswer() {
        var session = state(WebSocketLimits(pingInterval: .seconds(30), pongTimeout: .seconds(10)))
        _ = frame(&session, .text)
        XCTAssertEqual(session.keepaliveFired(), .wait(.seconds(30)), "heard from: no ping")
        XCTAssertEqual(session.keepaliveFired(), .ping(.seconds(10)))
        XCTAssertEqual(frame(&session, .pong), .ignore)
        XCTAssertEqual(session.keepaliveFired(), .wait(.seconds(30)), "answered")
        XCTAssertEqual(session.keepaliveFired(), .ping(.seconds(10)))
        XCTAssertEqual(session.keepaliveFired(), .abort)
        XCTAssertEqual(session.phase, .closed)
        XCTAssertEqual(session.statistics.closeCodeSent, .unexpectedServerError)
        XCTAssertEqual(session.keepaliveFired(), .none)
    }

    func testIdleTimeoutCountsDataEitherWay() {
        var off = state()
        XCTAssertEqual(off.idleTimerFired(), .none, "idle_timeout 0 is off")
        var session = state(WebSocketLimits(idleTimeout: .seconds(60)))
        session.messageSent(bytes: 5)
        XCTAssertEqual(session.idleTimerFired(), .wait(.seconds(60)))
        _ = frame(&session, .binary)
        XCTAssertTrue(session.messageCompleted(bytes: 1, now: start))
        XCTAssertEqual(session.idleTimerFired(), .wait(.seconds(60)))
        _ = frame(&session, .ping)
        XCTAssertEqual(session.idleTimerFired(), .close(.normalClosure, "idle timeout"), "pings are not data")
    }

    func testTheMessageRateRefillsWithTime() {
        var session = state(WebSocketLimits(maxMessagesPerSecond: 2, messageBurst: 2))
        for _ in 0..<2 {
            XCTAssertEqual(frame(&session, .text), .startMessage(.text, compressed: false))
            XCTAssertTrue(session.messageCompleted(bytes: 1, now: start))
        }
        XCTAssertEqual(frame(&session, .ping), .rateLimited, "pings count")
        XCTAssertEqual(frame(&session, .text), .startMessage(.text, compressed: false))
        XCTAssertFalse(session.messageCompleted(bytes: 1, now: start + .milliseconds(100)))
        XCTAssertEqual(frame(&session, .text), .startMessage(.text, compressed: false))
        XCTAssertTrue(session.messageCompleted(bytes: 1, now: start + .seconds(1)), "refilled")
        XCTAssertEqual(session.statistics.messagesIn, 3)
    }

    func testPingsHaveTheirOwnRate() {
        var session = state(WebSocketLimits(messageBurst: 2, maxPingsPerSecond: 1))
        XCTAssertEqual(frame(&session, .ping), .sendPong)
        XCTAssertEqual(frame(&session, .ping), .sendPong)
        XCTAssertEqual(frame(&session, .ping), .fail(.policyViolation, "ping rate limit"))
        XCTAssertEqual(frame(&session, .ping, at: start + .seconds(1)), .sendPong, "refilled")
        var unlimited = state(WebSocketLimits(maxPingsPerSecond: 0))
        XCTAssertTrue((0..<1000).allSatisfy { _ in frame(&unlimited, .ping) == .sendPong })
    }

    func testInflatingPastTheRateAsksForAWait() {
        var session = state(WebSocketLimits(maxInflatedBytesPerSecond: 1 << 20), compression: true)
        XCTAssertNil(session.inflated(bytes: 512 << 10, now: start), "within the burst")
        XCTAssertNil(session.inflated(bytes: (512 << 10) - 1, now: start))
        XCTAssertEqual(session.inflated(bytes: 1 << 20, now: start), .seconds(1), "a second of debt")
        XCTAssertNil(session.inflated(bytes: 0, now: start + .seconds(2)), "repaid")
        var unlimited = state(WebSocketLimits(maxInflatedBytesPerSecond: 0), compression: true)
        XCTAssertNil(unlimited.inflated(bytes: 1 << 30, now: start))
    }
}

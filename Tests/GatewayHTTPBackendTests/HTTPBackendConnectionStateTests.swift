import GatewayWebSocket
import NIOCore
import XCTest

@testable import GatewayHTTPBackend

final class HTTPBackendConnectionStateTests: XCTestCase {
    private func state(
        queue: Int = 3,
        bytes: Int = 1 << 20,
        batch: Int = 2,
        retries: Int = 2
    )
        -> HTTPBackendConnectionState
    {
        HTTPBackendConnectionState(
            limits: .init(queueMessages: queue, queueBytes: bytes, batchMessages: batch, retries: retries)
        )
    }

    private func text(_ value: String) -> WebSocketMessage {
        WebSocketMessage(kind: .text, data: ByteBuffer(string: value))
    }

    func testOneRequestInFlightAndTheRestBatchedInOrder() {
        var state = state()
        XCTAssertEqual(state.received(text("a")), .post(.messages([text("a")]), attempt: 0))
        XCTAssertEqual(state.received(text("b")), .none)
        XCTAssertEqual(state.received(text("c")), .none)
        XCTAssertEqual(state.received(text("d")), .none)
        // Two per request (batch_messages), in order.
        XCTAssertEqual(state.answered(), .post(.messages([text("b"), text("c")]), attempt: 0))
        XCTAssertEqual(state.answered(), .post(.messages([text("d")]), attempt: 0))
        XCTAssertEqual(state.answered(), .none)
        XCTAssertNil(state.inFlight)
    }

    func testAFullQueueClosesTheClientAndCountsWhatWasLost() {
        var state = state(queue: 2)
        _ = state.received(text("a"))
        _ = state.received(text("b"))
        _ = state.received(text("c"))
        guard case .closeUnavailable(_, let lost) = state.received(text("d")) else {
            return XCTFail("a third waiting message must close the client")
        }
        XCTAssertEqual(lost, 2)
        XCTAssertTrue(state.unavailable)
        XCTAssertEqual(state.received(text("e")), .none, "nothing more is taken")
    }

    func testTheByteBoundTakesOneMessageAlways() {
        var state = state(queue: 100, bytes: 4)
        _ = state.received(text("first"))
        XCTAssertEqual(state.received(text("12345678")), .none, "one message is always taken")
        guard case .closeUnavailable = state.received(text("x")) else { return XCTFail("over queue_bytes") }
    }

    func testAMessageThatNeverReachedTheAppIsSentAgainButOneItMayHaveSeenIsNot() {
        var state = state(retries: 2)
        _ = state.received(text("a"))
        guard case .retry = state.failed(neverSent: true, reason: "refused") else { return XCTFail("retry") }
        XCTAssertEqual(state.retryDue(), .post(.messages([text("a")]), attempt: 1))
        guard case .retry = state.failed(neverSent: true, reason: "refused") else { return XCTFail("retry") }
        XCTAssertEqual(state.retryDue(), .post(.messages([text("a")]), attempt: 2))
        guard case .closeUnavailable(_, let lost) = state.failed(neverSent: true, reason: "refused") else {
            return XCTFail("retries spent")
        }
        XCTAssertEqual(lost, 1)

        var seen = self.state()
        _ = seen.received(text("a"))
        guard case .closeUnavailable = seen.failed(neverSent: false, reason: "timeout") else {
            return XCTFail("a message the app may have seen is not sent again")
        }
    }

    func testTheCloseEventFollowsTheQueuedMessagesAndIsRetried() {
        var state = state()
        _ = state.received(text("a"))
        _ = state.received(text("b"))
        XCTAssertEqual(state.sessionClosed(code: 1001), .none)
        XCTAssertEqual(state.answered(), .post(.messages([text("b")]), attempt: 0))
        XCTAssertEqual(state.answered(), .post(.close(code: 1001), attempt: 0))
        guard case .retry = state.failed(neverSent: false, reason: "timeout") else {
            return XCTFail("close is idempotent: sent again")
        }
        XCTAssertEqual(state.retryDue(), .post(.close(code: 1001), attempt: 1))
        XCTAssertEqual(state.answered(), .finished)
    }

    func testAfterTheClientWasClosedAsUnavailableTheAppStillHearsTheClose() {
        var state = state(queue: 1)
        _ = state.received(text("a"))
        _ = state.received(text("b"))
        guard case .closeUnavailable = state.received(text("c")) else { return XCTFail("queue full") }
        XCTAssertEqual(state.afterUnavailable(), .none, "a request is still out")
        XCTAssertEqual(state.sessionClosed(code: 1013), .none)
        XCTAssertEqual(state.answered(), .post(.close(code: 1013), attempt: 0))
    }
}

import XCTest

@testable import GatewayEdge

final class HTTPConnectionStateTests: XCTestCase {
    private func ended(_ action: HTTPConnectionState.EndAction<String>) -> String {
        switch action {
        case .answer(let decided, let keepAlive): "answer \(decided) \(keepAlive)"
        case .askRoute(let decided): "ask \(decided)"
        case .refuseDraining: "503"
        case .none: "none"
        }
    }

    func testKeepAliveRequestsOneAfterAnother() {
        var state = HTTPConnectionState()
        for _ in 0..<3 {
            XCTAssertTrue(state.headArrived())
            XCTAssertEqual(state.phase, .reading)
            XCTAssertEqual(ended(state.endArrived("ok", isUpgrade: false)), "answer ok true")
            XCTAssertEqual(state.phase, .idle)
        }
        XCTAssertEqual(ended(state.endArrived("late", isUpgrade: false)), "none", "an end without a head")
    }

    func testADrainBetweenRequestsClosesAtOnceAndDuringOneEndsKeepAlive() {
        var idle = HTTPConnectionState()
        XCTAssertTrue(idle.quiesce())
        var busy = HTTPConnectionState()
        XCTAssertTrue(busy.headArrived())
        XCTAssertFalse(busy.quiesce(), "the request is answered first")
        XCTAssertEqual(ended(busy.endArrived("ok", isUpgrade: false)), "answer ok false")
    }

    func testAnUpgradeWaitsForItsRoute() {
        var state = HTTPConnectionState()
        XCTAssertTrue(state.headArrived())
        XCTAssertEqual(ended(state.endArrived("ws", isUpgrade: true)), "ask ws")
        XCTAssertEqual(state.phase, .awaitingVerdict)
        XCTAssertFalse(state.quiesce(), "the verdict decides")
        XCTAssertEqual(state.upgradeAccepted(clientActive: true), .abandon(answerDraining: true))
        XCTAssertEqual(state.phase, .done)
        XCTAssertFalse(state.headArrived(), "nothing more is read")
    }

    func testAnAcceptedUpgradeProceedsUnlessTheClientLeft() {
        var state = HTTPConnectionState()
        _ = state.headArrived()
        _ = state.endArrived("ws", isUpgrade: true)
        XCTAssertEqual(state.upgradeAccepted(clientActive: true), .proceed)
        var gone = HTTPConnectionState()
        _ = gone.headArrived()
        _ = gone.endArrived("ws", isUpgrade: true)
        XCTAssertEqual(gone.upgradeAccepted(clientActive: false), .abandon(answerDraining: false))
    }

    func testAnUpgradeThatEndsDuringADrainIs503() {
        var state = HTTPConnectionState()
        _ = state.headArrived()
        _ = state.quiesce()
        XCTAssertEqual(ended(state.endArrived("ws", isUpgrade: true)), "503")
        XCTAssertEqual(state.phase, .done)
    }

    func testAMalformedRequestIsAnsweredOnce() {
        var state = HTTPConnectionState()
        XCTAssertTrue(state.malformed())
        XCTAssertFalse(state.malformed())
        XCTAssertFalse(state.headArrived())
    }
}

import GatewayHub
import GatewayWebSocket
import NIOCore
import XCTest

@testable import GatewayCluster

/// A node delivers the shared history's publications in offset order, each once, and reads back
/// from the stream what its link missed.
final class RecordedDeliveryTests: XCTestCase {
    private func entry(_ offset: UInt64) -> HistoryEntry {
        HistoryEntry(
            offset: offset,
            message: HubMessage(WebSocketMessage(kind: .text, data: ByteBuffer(string: "\(offset)")))
        )
    }

    private func delivered(_ actions: [RecordedDelivery.Action]) -> [UInt64] {
        actions.flatMap { action -> [UInt64] in
            if case .deliver(_, let entries) = action { entries.map(\.offset) } else { [] }
        }
    }

    private func fetch(_ action: RecordedDelivery.Action?) -> (after: UInt64, through: UInt64?)? {
        if case .fetch(_, let after, let through) = action { (after, through) } else { nil }
    }

    func testInOrderEntriesAreDeliveredAndRepeatsAreNot() {
        var delivery = RecordedDelivery()
        XCTAssertEqual(delivered([delivery.arrived(entry(5), epoch: "e", on: "t")].compactMap { $0 }), [5])
        XCTAssertEqual(delivered([delivery.arrived(entry(6), epoch: "e", on: "t")].compactMap { $0 }), [6])
        XCTAssertNil(delivery.arrived(entry(6), epoch: "e", on: "t"), "once")
    }

    func testAGapIsReadBackBeforeAnythingNewer() throws {
        var delivery = RecordedDelivery()
        _ = delivery.arrived(entry(1), epoch: "e", on: "t")
        let gap = try XCTUnwrap(fetch(delivery.arrived(entry(4), epoch: "e", on: "t")))
        XCTAssertEqual(gap.after, 1)
        XCTAssertEqual(gap.through, 3)
        XCTAssertNil(delivery.arrived(entry(5), epoch: "e", on: "t"), "waits for the gap")
        XCTAssertEqual(delivered(delivery.fetched([entry(2), entry(3)], on: "t")), [2, 3, 4, 5])
        XCTAssertEqual(delivered([delivery.arrived(entry(6), epoch: "e", on: "t")].compactMap { $0 }), [6])
    }

    func testAGapTheStreamNoLongerHoldsClosesTheTopicsSubscribers() {
        var delivery = RecordedDelivery()
        _ = delivery.arrived(entry(1), epoch: "e", on: "t")
        _ = delivery.arrived(entry(10), epoch: "e", on: "t")
        let actions = delivery.fetched([entry(8), entry(9)], on: "t")
        XCTAssertTrue(actions.contains { if case .lose("t") = $0 { true } else { false } })
        XCTAssertEqual(delivered(actions), [])
        XCTAssertEqual(delivery.followed, 0)
    }

    func testARelinkReadsWhatEveryFollowedTopicMissed() throws {
        var delivery = RecordedDelivery()
        _ = delivery.arrived(entry(3), epoch: "e", on: "a")
        delivery.subscribed(to: "b", epoch: "e", offset: 7)
        let fetches = delivery.relinked().compactMap { fetch($0) }
        XCTAssertEqual(fetches.map(\.after).sorted(), [3, 7])
        XCTAssertTrue(fetches.allSatisfy { $0.through == nil })
        XCTAssertNil(delivery.arrived(entry(6), epoch: "e", on: "a"), "waits for the read")
        XCTAssertEqual(delivered(delivery.fetched([entry(4), entry(5)], on: "a")), [4, 5, 6])
        XCTAssertEqual(delivered(delivery.fetched([], on: "b")), [], "nothing missed")
    }

    func testANewEpochStartsAgain() {
        var delivery = RecordedDelivery()
        _ = delivery.arrived(entry(40), epoch: "old", on: "t")
        XCTAssertEqual(delivered([delivery.arrived(entry(1), epoch: "new", on: "t")].compactMap { $0 }), [1])
        XCTAssertEqual(delivered([delivery.arrived(entry(2), epoch: "new", on: "t")].compactMap { $0 }), [2])
    }

    func testAFailedReadClosesTheTopicsSubscribers() {
        var delivery = RecordedDelivery()
        _ = delivery.arrived(entry(1), epoch: "e", on: "t")
        _ = delivery.arrived(entry(3), epoch: "e", on: "t")
        if case .lose("t") = delivery.fetchFailed(on: "t") {} else { XCTFail("not lost") }
    }
}

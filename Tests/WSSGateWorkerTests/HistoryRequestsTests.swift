import NIOConcurrencyHelpers
import WorkerProtocol
import XCTest

@testable import WSSGateWorker

/// `resume` and `record` wait for the gateway's answer on the link they went out on; a link
/// that ends answers what waits on it.
final class HistoryRequestsTests: XCTestCase {
    private final class Link {}

    func testAnswersReachTheirRequestsInOrder() async {
        let requests = HistoryRequests()
        let link = ObjectIdentifier(Link.self)
        let sent = NIOLockedValueBox<[String]>([])
        let position = WorkerFrame.Position(offset: 7, epoch: "e")
        async let first = requests.waitForResume(HistoryRequests.key(1, "t"), on: link) {
            sent.withLockedValue { $0.append("resume 1") }
        }
        let request = requests.nextRequest()
        async let recorded = requests.waitForRecord(request, on: link) {
            sent.withLockedValue { $0.append("record \(request)") }
        }
        while sent.withLockedValue({ $0.count }) < 2 { await Task.yield() }
        requests.recorded(request, status: .recorded, position: position)
        requests.subscribed(.init(connection: 1, status: .recovered, position: position, missed: 3, topic: "t"))
        guard case .subscribed(let answer) = await first, case .recorded(let status, let at) = await recorded else {
            return XCTFail("wrong answers")
        }
        XCTAssertEqual(answer.missed, 3)
        XCTAssertEqual(status, .recorded)
        XCTAssertEqual(at, position)
        XCTAssertNotEqual(requests.nextRequest(), request, "request numbers are not reused")
    }

    func testALinkThatEndsAnswersWhatWaitsOnIt() async {
        let requests = HistoryRequests()
        let gone = ObjectIdentifier(Link.self)
        let sent = NIOLockedValueBox(0)
        async let resume = requests.waitForResume(HistoryRequests.key(9, "a b"), on: gone) {
            sent.withLockedValue { $0 += 1 }
        }
        async let record = requests.waitForRecord(requests.nextRequest(), on: gone) { sent.withLockedValue { $0 += 1 } }
        while sent.withLockedValue({ $0 }) < 2 { await Task.yield() }
        requests.linkEnded(gone)
        guard case .subscribed(let answer) = await resume, case .recorded(let status, _) = await record else {
            return XCTFail("wrong answers")
        }
        XCTAssertEqual(answer.status, .unavailable)
        XCTAssertEqual(answer.connection, 9)
        XCTAssertEqual(answer.topic, "a b", "a topic with a space survives the key")
        XCTAssertEqual(status, .failed)
    }
}

import GatewayHub
import GatewayWebSocket
import NIOConcurrencyHelpers
import NIOCore
import XCTest

final class Recorder: HubSubscriber {
    let subscriberID: UInt64
    private let box = NIOLockedValueBox<[String]>([])
    init(_ id: UInt64) { subscriberID = id }
    func deliver(_ message: WebSocketMessage) { box.withLockedValue { $0.append(String(buffer: message.data)) } }
    var received: [String] { box.withLockedValue { $0 } }
}

final class HubTests: XCTestCase {
    /// A publish looks up the patterns that can cover its topic, one per segment, and reaches
    /// exactly those; the many that cannot are never looked at.
    func testPatternsAreFoundByTheTopicsPrefixesNotByAScan() {
        XCTAssertEqual(Hub.patternPrefixes(of: "a.b.c"), ["", "a.", "a.b."])
        XCTAssertEqual(Hub.patternPrefixes(of: "plain"), [""])
        let hub = Hub()
        let (all, a, ab, other, near) = (Recorder(1), Recorder(2), Recorder(3), Recorder(4), Recorder(5))
        hub.subscribe(all, to: "*")
        hub.subscribe(a, to: "a.*")
        hub.subscribe(ab, to: "a.b.*")
        hub.subscribe(other, to: "a.c.*")
        hub.subscribe(near, to: "a.bc.*")
        for index in 0..<100_000 { hub.subscribe(Recorder(UInt64(10 + index)), to: "x\(index).*") }
        XCTAssertEqual(hub.publish(.text("m"), to: "a.b.c").subscribers, 3)
        XCTAssertEqual(all.received, ["m"])
        XCTAssertEqual(a.received, ["m"])
        XCTAssertEqual(ab.received, ["m"])
        XCTAssertEqual(other.received, [])
        XCTAssertEqual(near.received, [])
        XCTAssertEqual(hub.subscriberIDs(receiving: "a.b.c"), [1, 2, 3])
    }

    func testPublishReachesEverySubscriberOnceInOrder() {
        let hub = Hub()
        let a = Recorder(1)
        let b = Recorder(2)
        let c = Recorder(3)
        hub.subscribe(a, to: "news")
        hub.subscribe(b, to: "news")
        hub.subscribe(b, to: "news")  // twice is once
        hub.subscribe(c, to: "sport")
        XCTAssertEqual(hub.publish(.text("1"), to: "news").subscribers, 2)
        XCTAssertEqual(hub.publish(.text("2"), to: "news").subscribers, 2)
        XCTAssertEqual(hub.publish(.text("x"), to: "nobody").subscribers, 0)
        XCTAssertEqual(a.received, ["1", "2"])
        XCTAssertEqual(b.received, ["1", "2"])
        XCTAssertEqual(c.received, [])
    }

    func testUnsubscribing() {
        let hub = Hub()
        let a = Recorder(1)
        hub.subscribe(a, to: "t1")
        hub.subscribe(a, to: "t2")
        hub.unsubscribe(1, from: "t1")
        XCTAssertEqual(hub.topics(of: 1), ["t2"])
        hub.unsubscribeAll(1)
        XCTAssertEqual(hub.topics(of: 1), [])
        XCTAssertEqual(hub.subscriberCount(of: "t2"), 0)
        XCTAssertEqual(hub.publish(.text("gone"), to: "t2").subscribers, 0)
    }

    /// The per-connection limit reads a count kept as subscriptions change (counting a client's
    /// hundred thousand subscriptions on each subscribe held the event loop): a topic held twice
    /// counts once, the reserved topics of its user and tags not at all.
    func testOwnSubscriptionsAreCountedAsTheyChange() {
        let hub = Hub()
        let a = Recorder(1)
        hub.subscribe(a, to: "t1")
        hub.subscribe(a, to: "t1")
        hub.subscribe(a, to: "news.*")
        hub.subscribe(a, to: Hub.userTopic("alice"))
        hub.subscribe(a, to: Hub.tagTopic("room"))
        XCTAssertEqual(hub.ownSubscriptions(of: 1, holding: "t1").count, 2)
        XCTAssertTrue(hub.ownSubscriptions(of: 1, holding: "t1").holds)
        XCTAssertFalse(hub.ownSubscriptions(of: 1, holding: "t2").holds)
        hub.unsubscribe(1, from: "t1")
        hub.unsubscribe(1, from: "t1")
        hub.unsubscribe(1, from: Hub.userTopic("alice"))
        XCTAssertEqual(hub.ownSubscriptions(of: 1, holding: "t1").count, 1)
        hub.unsubscribeAll(1)
        XCTAssertEqual(hub.ownSubscriptions(of: 1, holding: "news.*").count, 0)
        XCTAssertFalse(hub.ownSubscriptions(of: 1, holding: "news.*").holds)
    }
}

final class HubPatternTests: XCTestCase {
    func testPatternsReachEveryTopicBelowThemOnce() {
        let hub = Hub()
        let all = Recorder(1)
        let news = Recorder(2)
        let exact = Recorder(3)
        hub.subscribe(all, to: "*")
        hub.subscribe(news, to: "news.*")
        hub.subscribe(news, to: "news.sport")  // and directly: still once
        hub.subscribe(exact, to: "news.sport")
        XCTAssertEqual(hub.publish(.text("goal"), to: "news.sport").subscribers, 3)
        XCTAssertEqual(hub.publish(.text("rain"), to: "weather").subscribers, 1)
        XCTAssertEqual(news.received, ["goal"])
        XCTAssertEqual(all.received, ["goal", "rain"])
        hub.unsubscribe(2, from: "news.*")
        hub.unsubscribe(2, from: "news.sport")
        XCTAssertEqual(hub.publish(.text("again"), to: "news.sport").subscribers, 2)
        XCTAssertTrue(Hub.matches("news.*", "news.a.b"))
        XCTAssertFalse(Hub.matches("news.*", "newsroom"))
    }
}

/// JSON is counted before it is decoded: what a message may cost an event loop is bounded.
final class JSONBudgetTests: XCTestCase {
    func testValuesAreCountedOutsideStrings() {
        XCTAssertTrue(JSONBudget.fits(Array(#"{"op":"publish","data":[1,2,3]}"#.utf8), maxValues: 5))
        XCTAssertFalse(JSONBudget.fits(Array(#"{"op":"publish","data":[1,2,3,4,5]}"#.utf8), maxValues: 5))
        // Commas and brackets in strings (escaped quotes too) are text, not values.
        XCTAssertTrue(JSONBudget.fits(Array(#"{"data":"a,b,[c],{d},\",e"}"#.utf8), maxValues: 2))
        let wide = "[" + Array(repeating: "1", count: 500_000).joined(separator: ",") + "]"
        XCTAssertFalse(JSONBudget.fits(Array(wide.utf8)))
    }
}

import GatewayCore
import GatewayWebSocket
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import XCTest

@testable import GatewayHub

/// Replays complete at once for a history kept here: any loop will do.
private let loop = EmbeddedEventLoop()

private func replayed(_ future: EventLoopFuture<TopicHistory.Replay>) -> TopicHistory.Replay {
    try! future.wait()
}

/// A subscriber that records offsets with the payloads, as a history topic delivers them.
private final class OffsetRecorder: HubSubscriber {
    let subscriberID: UInt64
    private let box = NIOLockedValueBox<[(UInt64, String)]>([])
    init(_ id: UInt64) { subscriberID = id }
    func deliver(_ message: WebSocketMessage) { XCTFail("a history topic delivers with offsets") }
    func deliver(_ message: WebSocketMessage, topic: String, offset: UInt64) {
        box.withLockedValue { $0.append((offset, String(buffer: message.data))) }
    }
    var received: [(UInt64, String)] { box.withLockedValue { $0 } }
}

final class TopicStreamTests: XCTestCase {
    private let settings = HistorySettings(size: 3, ttl: .seconds(60), maxBytes: 10)

    private func stream(with payloads: [String], at time: Int64 = 1_000_000) -> TopicStream {
        var stream = TopicStream(epoch: "e")
        for payload in payloads { _ = stream.append(HubMessage(.text(payload)), time: time, settings: settings) }
        return stream
    }

    func testOffsetsCountFromOneAndTheCountBoundKeepsTheNewest() {
        let stream = stream(with: ["a", "b", "c", "d"])
        XCTAssertEqual(stream.position, StreamPosition(offset: 4, epoch: "e"))
        XCTAssertEqual(stream.entries.map(\.offset), [2, 3, 4])
    }

    func testTheByteBoundKeepsTheNewestEvenAloneOverIt() {
        let stream = stream(with: ["12345", "123456", "12345678901"])
        XCTAssertEqual(stream.entries.map(\.offset), [3])
        XCTAssertEqual(stream.bytes, 11)
    }

    func testAgeDropsEvenTheNewest() {
        var stream = stream(with: ["a", "b"], at: 1_000_000)
        stream.trim(now: 1_000_000 + 61_000, settings: settings)
        XCTAssertTrue(stream.entries.isEmpty)
        XCTAssertEqual(stream.position.offset, 2, "offsets go on")
    }

    func testRecoveryIsAllOrNothing() {
        var stream = stream(with: ["a", "b", "c", "d"])  // 2, 3, 4 kept
        let now: Int64 = 1_000_000
        let fromOne = stream.recover(since: .init(offset: 1, epoch: "e"), now: now, settings: settings)
        XCTAssertEqual(fromOne.recovered, true)
        XCTAssertEqual(fromOne.missed.map(\.offset), [2, 3, 4])
        let fromZero = stream.recover(since: .init(offset: 0, epoch: "e"), now: now, settings: settings)
        XCTAssertFalse(fromZero.recovered, "offset 1 is gone")
        XCTAssertTrue(fromZero.missed.isEmpty)
        XCTAssertEqual(fromZero.position, StreamPosition(offset: 4, epoch: "e"))
        XCTAssertFalse(stream.recover(since: .init(offset: 3, epoch: "x"), now: now, settings: settings).recovered)
        XCTAssertFalse(stream.recover(since: .init(offset: 5, epoch: "e"), now: now, settings: settings).recovered)
        let current = stream.recover(since: .init(offset: 4, epoch: "e"), now: now, settings: settings)
        XCTAssertTrue(current.recovered)
        XCTAssertTrue(current.missed.isEmpty)
    }

    func testAResumeAtTheEndSucceedsAfterEverythingExpired() {
        var stream = stream(with: ["a"], at: 1_000_000)
        let later = stream.recover(since: .init(offset: 1, epoch: "e"), now: 2_000_000, settings: settings)
        XCTAssertTrue(later.recovered, "nothing was missed")
        XCTAssertFalse(
            stream.recover(since: .init(offset: 0, epoch: "e"), now: 2_000_000, settings: settings).recovered
        )
    }
}

final class HubHistoryTests: XCTestCase {
    /// Subscribing to ever new topics begins a stream each: past `max_topics` the least
    /// recently used are forgotten, and a topic published to a moment ago stays.
    func testTopicsWithHistoryAreBounded() {
        let history = try! TopicHistory(route: "r", settings: HistorySettings(maxTopics: 100), environment: [:])
        _ = history.record(HubMessage(.text("kept")), on: "busy") { _ in () }
        for index in 0..<10_000 { _ = history.position(of: "t\(index)") }
        XCTAssertLessThanOrEqual(history.topicCount, 100)
        _ = history.record(HubMessage(.text("again")), on: "busy") { _ in () }
        XCTAssertEqual(history.position(of: "busy").offset, 2, "a topic in use was kept")
    }

    func testPublicationsGetPositionsAndEventsCarryTheirOffset() {
        let hub = Hub()
        let history = try! TopicHistory(route: "r", settings: HistorySettings(topics: ["kept.*"]), environment: [:])
        hub.setHistories([history])
        let subscriber = OffsetRecorder(1)
        hub.subscribe(subscriber, to: "kept.a")
        let event = HubMessage.event(
            HubRouteService.messageEvent(topic: "kept.a", data: .object(["op": .string("message")]))
        )
        let first = hub.publish(event, to: "kept.a")
        let second = hub.publish(.text("raw"), to: "kept.a")
        XCTAssertEqual(first.position?.offset, 1)
        XCTAssertEqual(second.position?.offset, 2)
        XCTAssertEqual(first.position?.epoch, second.position?.epoch)
        XCTAssertNil(hub.publish(.text("x"), to: "other").position, "not covered: no history")
        XCTAssertEqual(subscriber.received.map(\.0), [1, 2])
        // The offset goes beside the top-level "op", not into a `data` that looks like one.
        XCTAssertEqual(
            subscriber.received[0].1,
            #"{"data":{"op":"message"},"offset":1,"op":"message","topic":"kept.a"}"#
        )
        XCTAssertEqual(subscriber.received[1].1, "raw", "a raw subscriber gets a raw publish as it was")
        let replay = replayed(history.replay("kept.a", since: nil, on: loop))
        XCTAssertEqual(
            replay.events.map { String(buffer: $0) },
            [
                #"{"data":{"op":"message"},"offset":1,"op":"message","topic":"kept.a"}"#,
                #"{"data":"raw","offset":2,"op":"message","topic":"kept.a"}"#,
            ]
        )
        XCTAssertNil(replay.recovered)
    }
}

final class HistoryLogTests: XCTestCase {
    private var directory = ""

    override func setUp() {
        directory = "/tmp/wssgate-history-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func settings(size: Int = 100) -> HistorySettings {
        HistorySettings(size: size, storage: .file, directory: directory)
    }

    /// A process that ends lets go of its file; the next one reads it back.
    private func ran<Result>(_ body: () throws -> Result) rethrows -> Result { try body() }

    func testARestartKeepsEpochsOffsetsAndPublications() throws {
        let position = try ran {
            let before = try TopicHistory(route: "r", settings: settings(), environment: [:])
            let hub = Hub()
            hub.setHistories([before])
            hub.publish(.text("one"), to: "t")
            hub.publish(.binary([1, 2, 3]), to: "t")
            return before.position(of: "t")
        }
        let after = try TopicHistory(route: "r", settings: settings(), environment: [:])
        XCTAssertEqual(after.position(of: "t"), position)
        let replay = replayed(after.replay("t", since: StreamPosition(offset: 0, epoch: position.epoch), on: loop))
        XCTAssertEqual(replay.recovered, true)
        XCTAssertEqual(replay.events.count, 2)
        XCTAssertTrue(String(buffer: replay.events[1]).contains(#""encoding":"base64""#))
    }

    /// Two gateways appending and compacting one file would tear it: the second is refused
    /// while the first holds it.
    func testASecondGatewayCannotOpenAFileInUse() throws {
        let first = try TopicHistory(route: "r", settings: settings(), environment: [:])
        XCTAssertThrowsError(try TopicHistory(route: "r", settings: settings(), environment: [:])) { error in
            XCTAssertTrue("\(error)".contains("in use by another gateway"), "\(error)")
        }
        withExtendedLifetime(first) {}
    }

    func testATornTailIsCutAndEveryEpochRenewed() throws {
        let (t, path) = try ran {
            let before = try TopicHistory(route: "r", settings: settings(), environment: [:])
            let hub = Hub()
            hub.setHistories([before])
            hub.publish(.text("one"), to: "t")
            hub.publish(.text("two"), to: "u")
            return (before.position(of: "t"), before.path!)
        }
        // Half a record at the end, as a crash mid-write leaves it.
        let descriptor = open(path, O_WRONLY | O_APPEND)
        XCTAssertGreaterThanOrEqual(descriptor, 0)
        let torn: [UInt8] = [0, 0, 0, 40, 1, 2, 3, 4, 2, 0]
        XCTAssertEqual(torn.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }, torn.count)
        close(descriptor)
        let renewed = try ran {
            let after = try TopicHistory(route: "r", settings: settings(), environment: [:])
            let renewed = after.position(of: "t")
            XCTAssertEqual(renewed.offset, t.offset, "offsets go on")
            XCTAssertNotEqual(renewed.epoch, t.epoch, "a publication a client saw may be missing")
            XCTAssertEqual(replayed(after.replay("t", since: t, on: loop)).recovered, false)
            return renewed
        }
        // The rewritten file is whole again: a third start keeps the new epoch.
        let third = try TopicHistory(route: "r", settings: settings(), environment: [:])
        XCTAssertEqual(third.position(of: "t"), renewed)
    }

    func testACorruptRecordEndsTheReadingThere() {
        var file = ByteBuffer()
        for body in [[UInt8(1), 0, 1, 0x74, 0, 1, 0x65, 0, 0, 0, 0, 0, 0, 0, 0], [UInt8(9)]] {
            file.writeInteger(UInt32(body.count))
            file.writeInteger(HistoryLog.checksum(body))
            file.writeBytes(body)
        }
        let contents = HistoryLog.parse(file)
        XCTAssertTrue(contents.tornTail, "an unknown record type")
        XCTAssertEqual(contents.streams["t"]?.epoch, "e")
    }
}

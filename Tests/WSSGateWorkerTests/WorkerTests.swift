import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import WorkerProtocol
import XCTest

@testable import WSSGateWorker

/// The worker library's end of links, fed frames as a gateway would send them.
final class WorkerTests: XCTestCase {
    private let loop = EmbeddedEventLoop()
    private var links: [EmbeddedChannel] = []

    override func tearDown() {
        for link in links { XCTAssertNoThrow(try link.finish(acceptAlreadyClosed: true)) }
        links = []
    }

    private func worker(credit: Int = 4096, handler: @escaping Worker.Handler = { _, _ in }) -> Worker {
        Worker(
            configuration: .init(socketPath: "/nonexistent", name: "test", credit: credit, maxFrameBytes: 1 << 16),
            socketPath: "/nonexistent",
            handler: handler
        )
    }

    /// A link from gateway `gateway`, past its hello.
    private func link(to worker: Worker, gateway: String, maxVersion: UInt16 = 2) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(handler: ServerLinkHandler(worker: worker), loop: loop)
        links.append(channel)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(
            WorkerFrameCodec.encode(.hello(.init(maxVersion: maxVersion, maxFrameBytes: 1 << 16, gateway: gateway)))
        )
        loop.run()
        let ack = try frames(from: channel)
        guard case .helloAck(let hello) = ack.first else { throw TestError.noHelloAck }
        XCTAssertEqual(hello.initialCredit, 4096)
        XCTAssertEqual(hello.version, min(maxVersion, 2), "the newest version both speak")
        return channel
    }

    /// Version 2: an attachment set by the application goes to the gateway; a `suspend` reaches
    /// the application after the connection's earlier events and is answered with `release`
    /// once it has been handled; the resumed `open` hands the attachment back.
    func testSuspendIsReleasedAfterTheHandlerAndTheAttachmentComesBack() throws {
        let seen = NIOLockedValueBox<[String]>([])
        let worker = worker { event, worker in
            switch event {
            case .open(let connection):
                seen.withLockedValue { $0.append("open \(connection.resumed) \(connection.attachment ?? [])") }
            case .message(let id, _):
                seen.withLockedValue { $0.append("message") }
                worker.attach([7, 8], to: id)
            case .suspended(let id):
                seen.withLockedValue { $0.append("suspended \(id)") }
            case .closed:
                break
            }
        }
        let channel = try link(to: worker, gateway: "g")
        try channel.writeInbound(WorkerFrameCodec.encode(.open(.init(connection: 5, fields: []))))
        try channel.writeInbound(
            WorkerFrameCodec.encode(.message(connection: 5, kind: .text, payload: ByteBuffer(string: "x")))
        )
        try channel.writeInbound(WorkerFrameCodec.encode(.suspend(connection: 5)))
        let sent = try frames(from: channel)
        XCTAssertTrue(sent.contains(.attach(connection: 5, data: ByteBuffer(bytes: [7, 8]))))
        XCTAssertEqual(sent.last, .release(connection: 5), "release is the last frame about it")
        // No longer this worker's: a command for it goes nowhere.
        worker.attach([1], to: 5)
        XCTAssertTrue(try frames(from: channel).isEmpty)
        try channel.writeInbound(
            WorkerFrameCodec.encode(
                .open(.init(connection: 5, resumed: true, fields: [], attachment: ByteBuffer(bytes: [7, 8])))
            )
        )
        XCTAssertEqual(seen.withLockedValue { $0 }, ["open false []", "message", "suspended 5", "open true [7, 8]"])
    }

    /// Users and tags: `identify` goes over the connection's link; sends and closes by user or
    /// tag go once to each gateway, over its oldest link; a version 1 gateway gets none of them.
    func testIdentifyAndAddressingByUserAndTag() throws {
        let worker = worker { event, worker in
            if case .open(let connection) = event {
                worker.identify(connection.id, user: "alice", addTags: ["a"])
                worker.send(Worker.Message(text: "hi"), toUser: "bob")
                worker.send(Worker.Message(text: "all"), toTag: "a")
                worker.close(user: "carol", code: 4000, reason: "bye")
                worker.close(tag: "b")
            }
        }
        let first = try link(to: worker, gateway: "g")
        let second = try link(to: worker, gateway: "g")
        try second.writeInbound(WorkerFrameCodec.encode(.open(.init(connection: 9, fields: []))))
        XCTAssertEqual(
            try frames(from: second),
            [.identify(connection: 9, user: "alice", add: ["a"], remove: [])],
            "identify on the connection's own link"
        )
        XCTAssertEqual(
            try frames(from: first),
            [
                .sendTo(target: .user("bob"), kind: .text, payload: ByteBuffer(string: "hi")),
                .sendTo(target: .tag("a"), kind: .text, payload: ByteBuffer(string: "all")),
                .closeTo(target: .user("carol"), code: 4000, reason: "bye"),
                .closeTo(target: .tag("b"), code: 1000, reason: ""),
            ],
            "addressing once per gateway, over its oldest link"
        )
        let old = try link(
            to: self.worker { event, worker in
                if case .open(let connection) = event { worker.identify(connection.id, user: "x") }
            },
            gateway: "h",
            maxVersion: 1
        )
        try old.writeInbound(WorkerFrameCodec.encode(.open(.init(connection: 3, fields: []))))
        XCTAssertTrue(try frames(from: old).isEmpty)
    }

    /// A gateway that speaks only version 1 gets version 1, and no version 2 frame.
    func testAVersion1GatewayGetsNoAttach() throws {
        let worker = worker { event, worker in
            if case .message(let id, _) = event { worker.attach([1], to: id) }
        }
        let channel = try link(to: worker, gateway: "g", maxVersion: 1)
        try channel.writeInbound(WorkerFrameCodec.encode(.open(.init(connection: 5, fields: []))))
        try channel.writeInbound(
            WorkerFrameCodec.encode(.message(connection: 5, kind: .text, payload: ByteBuffer(string: "x")))
        )
        XCTAssertFalse(try frames(from: channel).contains { if case .attach = $0 { true } else { false } })
    }

    private enum TestError: Error { case noHelloAck }

    private func frames(from channel: EmbeddedChannel) throws -> [WorkerFrame] {
        loop.run()
        var reader = WorkerFrameReader(maxFrameBytes: 1 << 20)
        while let bytes = try channel.readOutbound(as: ByteBuffer.self) { reader.append(bytes) }
        var frames: [WorkerFrame] = []
        while let frame = try reader.next() { frames.append(frame) }
        return frames
    }

    /// A gateway opens a link per event loop to each instance; a publish must reach it once.
    func testAPublishGoesOverOneLinkOfEachGateway() throws {
        let worker = worker()
        let first = try link(to: worker, gateway: "wssgate/a")
        let second = try link(to: worker, gateway: "wssgate/a")
        let other = try link(to: worker, gateway: "wssgate/b")
        worker.publish(.init(text: "news"), to: "topic")
        worker.publish(.init(text: "more"), to: "topic")
        let published = try [first, second, other].map { channel in
            try frames(from: channel).filter { if case .publish = $0 { true } else { false } }.count
        }
        XCTAssertEqual(published, [2, 0, 2], "the oldest link of each gateway carries its publishes")
    }

    func testCreditGoesBackWhenTheHandlerReturns() throws {
        let handled = NIOLockedValueBox(0)
        let worker = worker { event, _ in
            if case .message = event { handled.withLockedValue { $0 += 1 } }
        }
        let channel = try link(to: worker, gateway: "g")
        try channel.writeInbound(WorkerFrameCodec.encode(.open(.init(connection: 5, fields: [(OpenField.path, "/p")]))))
        for _ in 0..<3 {
            try channel.writeInbound(
                WorkerFrameCodec.encode(
                    .message(connection: 5, kind: .binary, payload: ByteBuffer(repeating: 1, count: 100))
                )
            )
        }
        try channel.writeInbound(WorkerFrameCodec.encode(.message(connection: 5, kind: .text, payload: ByteBuffer())))
        XCTAssertEqual(handled.withLockedValue { $0 }, 4)
        let credit = try frames(from: channel).compactMap { frame -> (UInt32, UInt32)? in
            if case .credit(5, let messages, let bytes) = frame { (messages, bytes) } else { nil }
        }
        // Under a quarter of the window: one batch at the end of the tick; an empty message is one byte.
        XCTAssertEqual(credit.map(\.0), [4])
        XCTAssertEqual(credit.map(\.1), [301])
    }

    func testAGatewayFrameFromTheWrongSideEndsTheLink() throws {
        let worker = worker()
        let channel = try link(to: worker, gateway: "g")
        try channel.writeInbound(WorkerFrameCodec.encode(.send(connection: 1, kind: .text, payload: ByteBuffer())))
        XCTAssertFalse(channel.isActive)
    }

    func testTheConnectionsQueryIsDecoded() {
        let connection = Worker.Connection(
            id: 1,
            resumed: false,
            verdictRequired: false,
            fields: [(OpenField.path, "/chat"), (OpenField.query, "room=caf%C3%A9&name=a+b&flag")]
        )
        XCTAssertEqual(connection.path, "/chat")
        XCTAssertEqual(connection.query, ["room": "café", "name": "a b", "flag": ""])
    }
}

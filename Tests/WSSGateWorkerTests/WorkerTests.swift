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
    private func link(to worker: Worker, gateway: String) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(handler: ServerLinkHandler(worker: worker), loop: loop)
        links.append(channel)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(WorkerFrameCodec.encode(.hello(.init(maxFrameBytes: 1 << 16, gateway: gateway))))
        loop.run()
        let ack = try frames(from: channel)
        guard case .helloAck(let hello) = ack.first else { throw TestError.noHelloAck }
        XCTAssertEqual(hello.initialCredit, 4096)
        return channel
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

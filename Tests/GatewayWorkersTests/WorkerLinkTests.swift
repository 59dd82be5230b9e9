import GatewayCore
import GatewayHub
import GatewayWebSocket
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOWebSocket
import SessionTestSupport
import WorkerProtocol
import XCTest

@testable import GatewayWorkers
@testable import WSSGateWorker

/// The gateway's link handler and the worker library's, joined across in-memory channels on one
/// embedded loop: the whole protocol, both real ends, no socket.
final class WorkerLinkTests: XCTestCase {
    private let loop = EmbeddedEventLoop()
    private var gatewayEnd: EmbeddedChannel!
    private var workerEnd: EmbeddedChannel!
    private var clients: [EmbeddedChannel] = []
    private var pool: WorkerPool!
    private var worker: Worker!
    private var outcome: EventLoopPromise<WorkerLinkHandler.Outcome>!
    private let events = NIOLockedValueBox<[Worker.Event]>([])
    private let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    override func setUp() {
        outcome = loop.makePromise()
    }

    override func tearDown() {
        for client in clients { _ = try? client.finish(acceptAlreadyClosed: true) }
        _ = try? gatewayEnd?.finish(acceptAlreadyClosed: true)
        _ = try? workerEnd?.finish(acceptAlreadyClosed: true)
        outcome.succeed(.ended)
        try? loop.syncShutdownGracefully()
    }

    /// Both ends, linked. `reply` answers the worker's events (on the loop).
    private func link(
        authorize: Bool = false,
        credit: Int = 1 << 16,
        reply: @escaping @Sendable (Worker.Event, Worker) -> Void = { _, _ in }
    ) throws {
        let route = RouteConfiguration(
            name: "work",
            path: "/work",
            backend: .worker(WorkerSettings(source: .external(socket: "/nonexistent"), authorize: authorize))
        )
        guard case .worker(let settings) = route.backend else { return XCTFail("a worker route") }
        pool = try WorkerPool(route: route, settings: settings, hub: Hub(), group: loop, logger: logger)
        let events = self.events
        worker = Worker(
            configuration: .init(socketPath: "/nonexistent", name: "test-worker", credit: credit),
            socketPath: "/nonexistent",
            handler: { event, worker in
                events.withLockedValue { $0.append(event) }
                reply(event, worker)
            }
        )
        gatewayEnd = EmbeddedChannel(
            handler: WorkerLinkHandler(
                instance: 0,
                instanceName: "work-0",
                linkID: 1,
                maxFrameBytes: 1 << 20,
                helloTimeout: .seconds(5),
                pool: pool,
                logger: logger,
                outcome: outcome
            ),
            loop: loop
        )
        workerEnd = EmbeddedChannel(handler: ServerLinkHandler(worker: worker), loop: loop)
        try workerEnd.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try gatewayEnd.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try pump()
        XCTAssertTrue(pool.isReady)
    }

    /// Moves bytes both ways until neither end has anything to say.
    private func pump() throws {
        for _ in 0..<100 {
            loop.run()
            var moved = false
            while let bytes = try gatewayEnd.readOutbound(as: ByteBuffer.self) {
                if workerEnd.isActive { try workerEnd.writeInbound(bytes) }
                moved = true
            }
            while let bytes = try workerEnd.readOutbound(as: ByteBuffer.self) {
                if gatewayEnd.isActive { try gatewayEnd.writeInbound(bytes) }
                moved = true
            }
            if !moved { return }
        }
        XCTFail("the two ends never went quiet")
    }

    /// A client of the route: its upgrade decided by the pool, then a session on an embedded
    /// channel (frames in and out, no HTTP).
    private func client(id: UInt64 = 42) throws -> (EmbeddedChannel, UpgradeVerdict?) {
        let channel = EmbeddedChannel(loop: loop)
        clients.append(channel)
        var verdict: UpgradeVerdict?
        pool.prepare(
            UpgradeRequest(
                connectionID: id,
                route: pool.route,
                target: "/work?room=a",
                headers: [("user-agent", "tests"), ("x-other", "not forwarded")],
                peer: "127.0.0.1:5000",
                subprotocol: nil,
                tlsVersion: "tlsv13"
            ),
            eventLoop: loop
        ) { verdict = $0 }
        try pump()
        if case .accept(let application) = verdict {
            let session = WebSocketSessionHandler(
                configuration: .init(routeName: "work", limits: .init(), deflate: nil, subprotocol: nil),
                application: application,
                peer: "127.0.0.1:5000",
                logger: logger
            )
            try channel.pipeline.syncOperations.addHandlers([WireFrameAdapter(), session])
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            try pump()
        }
        return (channel, verdict)
    }

    private func frame(_ opcode: WebSocketOpcode, _ data: ByteBuffer) -> WebSocketFrame {
        var data = data
        let key = WebSocketMaskingKey([1, 2, 3, 4])!
        data.webSocketMask(key)
        return WebSocketFrame(fin: true, opcode: opcode, maskKey: key, data: data)
    }

    private func closeFrame(_ code: UInt16, _ reason: String) -> WebSocketFrame {
        var data = ByteBuffer()
        data.writeInteger(code)
        data.writeString(reason)
        return frame(.connectionClose, data)
    }

    func testAMessageGoesToTheWorkerAndItsReplyToTheClient() throws {
        try link { event, worker in
            if case .message(let id, let message) = event { worker.send(message, to: id) }
        }
        let (client, verdict) = try client()
        guard case .accept = verdict else { return XCTFail("no upgrade: \(String(describing: verdict))") }
        let opens = events.withLockedValue { $0 }.compactMap { if case .open(let c) = $0 { c } else { nil } }
        XCTAssertEqual(opens.map(\.id), [42])
        XCTAssertEqual(opens.first?.field(OpenField.route), "work")
        XCTAssertEqual(opens.first?.field(OpenField.query), "room=a")
        XCTAssertEqual(opens.first?.field(OpenField.tls), "tlsv13")
        XCTAssertEqual(opens.first?.field("user-agent"), "tests")
        XCTAssertNil(opens.first?.field("x-other"))

        try client.writeInbound(frame(.text, ByteBuffer(string: "hello")))
        try pump()
        let reply = try XCTUnwrap(try client.readOutbound(as: WebSocketFrame.self))
        XCTAssertEqual(reply.opcode, .text)
        XCTAssertEqual(reply.data, ByteBuffer(string: "hello"))
    }

    /// A connection already pinned to a link is not opened again when it is offered once more
    /// — as when two links of a new instance become ready at once and each offers it the waiting
    /// connections: the worker saw a second, resumed `open` without the attachment (a flaky
    /// end-to-end hibernation run caught it).
    func testAPinnedConnectionIsNotOpenedTwice() throws {
        try link { event, worker in
            if case .message(let id, let message) = event { worker.send(message, to: id) }
        }
        let (client, verdict) = try client()
        guard case .accept = verdict else { return XCTFail("no upgrade: \(String(describing: verdict))") }
        let connection = try XCTUnwrap(pool.connection(42))
        pool.attach(connection, wake: true)
        try pump()
        let opens = events.withLockedValue { $0 }.compactMap { if case .open(let c) = $0 { c } else { nil } }
        XCTAssertEqual(opens.map(\.id), [42])
        XCTAssertEqual(pool.statistics.connections, 1)
        try client.writeInbound(frame(.text, ByteBuffer(string: "still one")))
        try pump()
        XCTAssertEqual(try client.readOutbound(as: WebSocketFrame.self)?.data, ByteBuffer(string: "still one"))
    }

    /// The client's close reason reaches the worker.
    func testTheClientsCloseReasonReachesTheWorker() throws {
        try link()
        let (client, _) = try client()
        try client.writeInbound(closeFrame(4001, "bye now"))
        try pump()
        let closed = events.withLockedValue { $0 }.compactMap { event -> (UInt16?, String)? in
            if case .closed(_, let code, let reason) = event { (code, reason) } else { nil }
        }
        XCTAssertEqual(closed.map(\.0), [4001])
        XCTAssertEqual(closed.map(\.1), ["bye now"])
        _ = try client.readOutbound(as: WebSocketFrame.self)  // the echoed Close
    }

    /// The worker's own close reason comes back in its `closed`.
    func testTheWorkersCloseReasonComesBackInClosed() throws {
        try link { event, worker in
            if case .open(let connection) = event { worker.close(connection.id, code: 4002, reason: "go away") }
        }
        let (client, _) = try client()
        let sent = try XCTUnwrap(try client.readOutbound(as: WebSocketFrame.self))
        XCTAssertEqual(sent.opcode, .connectionClose)
        try client.writeInbound(closeFrame(4002, ""))
        try pump()
        let closed = events.withLockedValue { $0 }.compactMap { event -> (UInt16?, String)? in
            if case .closed(_, let code, let reason) = event { (code, reason) } else { nil }
        }
        XCTAssertEqual(closed.map(\.0), [4002])
        XCTAssertEqual(closed.map(\.1), ["go away"])
    }

    func testAVerdictComesBackOverTheLink() throws {
        try link(authorize: true) { event, worker in
            if case .open(let connection) = event, connection.verdictRequired {
                if connection.id == 1 {
                    worker.accept(connection.id)
                } else {
                    worker.reject(connection.id, status: 401, reason: "no token")
                }
            }
        }
        let (_, accepted) = try client(id: 1)
        guard case .accept = accepted else { return XCTFail("\(String(describing: accepted))") }
        let (_, refused) = try client(id: 2)
        guard case .refuse(let status, let message) = refused else { return XCTFail("\(String(describing: refused))") }
        XCTAssertEqual(status, 401)
        XCTAssertEqual(message, "no token")
        XCTAssertEqual(pool.statistics.connections, 1, "the rejected one is forgotten")
    }

    /// A worker's text that is not UTF-8 ends its link; the client is not failed.
    /// An attachment of exactly `worker.attachment_bytes` (2 KiB by default) is kept.
    func testAnAttachmentAtTheLimitIsKept() throws {
        try link { event, worker in
            if case .open(let connection) = event {
                worker.attach([UInt8](repeating: 7, count: 2048), to: connection.id)
            }
        }
        let (client, _) = try client()
        XCTAssertTrue(gatewayEnd.isActive, "the link stays")
        XCTAssertTrue(client.isActive)
        XCTAssertEqual(pool.statistics.linkErrors, 0)
    }

    /// `worker.attachment_bytes` is crossed by one byte: the link ends, the client stays.
    func testAnAttachmentOverTheLimitEndsTheLinkNotTheClient() throws {
        try link { event, worker in
            if case .open(let connection) = event {
                worker.attach([UInt8](repeating: 7, count: 2048), to: connection.id)
                worker.attach([UInt8](repeating: 7, count: 2049), to: connection.id)
            }
        }
        let (client, _) = try client()
        XCTAssertFalse(gatewayEnd.isActive, "the link is closed")
        XCTAssertTrue(client.isActive, "the client stays")
        XCTAssertEqual(pool.statistics.linkErrors, 1)
        XCTAssertEqual(try outcome.futureResult.wait(), .broken)
    }

    func testATextSendThatIsNotUTF8EndsTheLinkNotTheClient() throws {
        try link { event, worker in
            if case .open(let connection) = event {
                worker.send(.init(kind: .text, data: ByteBuffer(bytes: [0x63, 0xC3])), to: connection.id)
            }
        }
        let (client, _) = try client()
        XCTAssertFalse(gatewayEnd.isActive, "the link is closed")
        XCTAssertTrue(client.isActive, "the client stays")
        XCTAssertNil(try client.readOutbound(as: WebSocketFrame.self), "nothing reached the client")
        XCTAssertEqual(pool.statistics.linkErrors, 1)
        XCTAssertEqual(try outcome.futureResult.wait(), .broken)
        XCTAssertEqual(pool.statistics.waitingConnections, 1, "it waits for another link")
    }

    /// How a link ended is what the backoff goes by.
    func testALinkThatEndsCleanlyIsNotBroken() throws {
        try link()
        try gatewayEnd.close().wait()
        XCTAssertEqual(try outcome.futureResult.wait(), .ended)
        XCTAssertFalse(pool.isReady)
    }

    func testTopicsFollowTheHubsRules() throws {
        for topic in ["has space", String(repeating: "t", count: 300), "a.*.b"] {
            try link()
            var bytes = ByteBuffer()
            WorkerFrameCodec.encode(
                .publish(topic: topic, kind: .text, payload: ByteBuffer(string: "{}")),
                into: &bytes
            )
            try gatewayEnd.writeInbound(bytes)
            XCTAssertFalse(gatewayEnd.isActive, topic)
            XCTAssertEqual(try outcome.futureResult.wait(), .broken, topic)
            _ = try? gatewayEnd.finish(acceptAlreadyClosed: true)
            _ = try? workerEnd.finish(acceptAlreadyClosed: true)
            outcome = loop.makePromise()  // the last one is fulfilled: .broken
        }
    }

    func testAWorkersPublishReachesSubscribersOfAnyRoute() throws {
        try link { event, worker in
            if case .open(let connection) = event {
                worker.subscribe(connection.id, to: "room.a")
                worker.publish(.init(text: "to the room"), to: "room.a")
            }
        }
        let (client, _) = try client()
        try pump()
        let frame = try XCTUnwrap(try client.readOutbound(as: WebSocketFrame.self))
        XCTAssertEqual(frame.data, ByteBuffer(string: "to the room"))
    }
}

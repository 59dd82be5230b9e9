import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import WorkerProtocol
import XCTest

@testable import ExampleWorkers

#if canImport(Glibc)
import Glibc
#endif

/// The echo worker as the gateway starts it: `WSSGATE_WORKER_SOCKET` names its socket, and a
/// real Unix-socket link speaks the protocol with it.
final class EchoWorkerTests: XCTestCase {
    func testEchoesEveryMessageWithItsKind() async throws {
        let directory = FileManagerless.temporaryDirectory()
        let path = directory + "/echo.sock"
        setenv("WSSGATE_WORKER_SOCKET", path, 1)
        defer { unsetenv("WSSGATE_WORKER_SOCKET") }
        let running = Task { try await EchoWorker.run() }
        defer { running.cancel() }

        let group = MultiThreadedEventLoopGroup.singleton
        var channel: (any Channel)?
        let deadline = ContinuousClock.now + .seconds(10)
        while channel == nil, ContinuousClock.now < deadline {
            channel = try? await ClientBootstrap(group: group).connect(unixDomainSocketPath: path).get()
            if channel == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        let link = try XCTUnwrap(channel, "the echo worker never listened")
        var received = try await LinkReader.attach(to: link)
        try await link.writeAndFlush(WorkerFrameCodec.encode(.hello(.init(maxFrameBytes: 1 << 16, gateway: "test"))))
        guard case .helloAck = try await received.next() else { return XCTFail("no hello_ack") }
        try await link.writeAndFlush(WorkerFrameCodec.encode(.open(.init(connection: 9, fields: []))))
        try await link.writeAndFlush(
            WorkerFrameCodec.encode(.message(connection: 9, kind: .text, payload: ByteBuffer(string: "hi")))
        )
        try await link.writeAndFlush(
            WorkerFrameCodec.encode(.message(connection: 9, kind: .binary, payload: ByteBuffer(bytes: [0, 255])))
        )
        var sends: [WorkerFrame] = []
        while sends.count < 2 {
            let frame = try await received.next()
            if case .send = frame { sends.append(frame) }
        }
        XCTAssertEqual(sends[0], .send(connection: 9, kind: .text, payload: ByteBuffer(string: "hi")))
        XCTAssertEqual(sends[1], .send(connection: 9, kind: .binary, payload: ByteBuffer(bytes: [0, 255])))
        try await link.close()
        unlink(path)
        rmdir(directory)
    }
}

/// A temporary directory without Foundation's FileManager.
enum FileManagerless {
    static func temporaryDirectory() -> String {
        var template = Array("/tmp/wgtest-XXXXXX".utf8CString)
        return String(cString: mkdtemp(&template))
    }
}

/// Frames read from a link, one at a time, each within a deadline (polled: nothing here waits
/// without one).
final class LinkReader: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    private let bytes = NIOLockedValueBox(ByteBuffer())

    static func attach(to channel: any Channel) async throws -> Frames {
        let reader = LinkReader()
        try await channel.pipeline.addHandler(reader).get()
        return Frames(source: reader)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        bytes.withLockedValue { _ = $0.writeBuffer(&incoming) }
    }

    fileprivate func take() -> ByteBuffer {
        bytes.withLockedValue { buffer in
            defer { buffer.clear() }
            return buffer
        }
    }

    struct Frames {
        let source: LinkReader
        var reader = WorkerFrameReader(maxFrameBytes: 1 << 20)

        struct Timeout: Error {}

        mutating func next(within limit: Duration = .seconds(10)) async throws -> WorkerFrame {
            let deadline = ContinuousClock.now + limit
            while true {
                reader.append(source.take())
                if let frame = try reader.next() { return frame }
                guard ContinuousClock.now < deadline else { throw Timeout() }
                try await Task.sleep(for: .milliseconds(10))
            }
        }
    }
}

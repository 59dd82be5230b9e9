import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import WorkerProtocol
import XCTest

/// The writer over a real socket pair: frames from one tick go out in one write, in order, a
/// large payload included, and `willFlush` frames ride along.
final class WorkerFrameWriterTests: XCTestCase {
    final class Collect: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let received = NIOLockedValueBox<(bytes: ByteBuffer, reads: Int)>((ByteBuffer(), 0))
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            received.withLockedValue {
                $0.bytes.writeBuffer(&bytes)
                $0.reads += 1
            }
        }
    }

    func pair() async throws -> (client: any Channel, server: any Channel, collect: Collect) {
        let group = MultiThreadedEventLoopGroup.singleton
        let collect = Collect()
        let accepted = NIOLockedValueBox<(any Channel)?>(nil)
        let server = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                accepted.withLockedValue { $0 = channel }
                return channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collect) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let client = try await ClientBootstrap(group: group).connect(to: server.localAddress!).get()
        addTeardownBlock {
            try? await client.close()
            try? await server.close()
            try? await accepted.withLockedValue { $0 }?.close()
        }
        return (client, server, collect)
    }

    func frames(in bytes: ByteBuffer) throws -> [WorkerFrame] {
        var reader = WorkerFrameReader(maxFrameBytes: 1 << 20)
        reader.append(bytes)
        var frames: [WorkerFrame] = []
        while let frame = try reader.next() { frames.append(frame) }
        XCTAssertEqual(reader.bufferedBytes, 0)
        return frames
    }

    func testOneTickIsOneWriteInOrder() async throws {
        let (client, _, collect) = try await pair()
        let big = ByteBuffer(repeating: 7, count: WorkerFrameWriter.separatePayloadBytes + 1)
        let credits = NIOLockedValueBox(0)
        let writer = WorkerFrameWriter(channel: client) { writer in
            // Runs once per flush, before the bytes go out.
            credits.withLockedValue { $0 += 1 }
            writer.write(.credit(connection: 1, messages: 1, bytes: 1))
        }
        var sent: [WorkerFrame] = (0..<50).map {
            .send(connection: UInt64($0), kind: .text, payload: ByteBuffer(string: "m\($0)"))
        }
        sent.insert(.send(connection: 99, kind: .binary, payload: big), at: 25)
        let tick = sent
        try await client.eventLoop.submit {
            for frame in tick { writer.write(frame) }
        }.get()
        sent.append(.credit(connection: 1, messages: 1, bytes: 1))
        let expected = sent.reduce(0) { $0 + WorkerFrameCodec.encode($1).readableBytes }
        while collect.received.withLockedValue({ $0.bytes.readableBytes }) < expected {
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        let bytes = collect.received.withLockedValue { $0.bytes }
        XCTAssertEqual(try frames(in: bytes), sent)
        XCTAssertEqual(credits.withLockedValue { $0 }, 1, "one flush for the whole tick")
    }

    func testWritesFromOtherThreadsArriveInOrder() async throws {
        let (client, _, collect) = try await pair()
        let writer = WorkerFrameWriter(channel: client)
        let sent: [WorkerFrame] = (0..<1000).map { .credit(connection: 3, messages: UInt32($0), bytes: 1) }
        for frame in sent { writer.write(frame) }  // off the loop: each hops there, in order
        let expected = sent.count * WorkerFrameCodec.encode(sent[0]).readableBytes
        while collect.received.withLockedValue({ $0.bytes.readableBytes }) < expected {
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        XCTAssertEqual(try frames(in: collect.received.withLockedValue { $0.bytes }), sent)
    }
}

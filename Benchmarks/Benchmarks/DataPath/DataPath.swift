import Benchmark
import GatewayHub
import GatewayWebSocket
import Logging
import NIOCore
import NIOEmbedded
import NIOWebSocket
import WorkerProtocol

/// The data path's pieces, each without sockets or TLS: what one message costs in CPU and in
/// allocations inside the gateway. `make bench` measures the whole; these say where it goes.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput],
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 1_000
    )

    // MARK: WebSocket frames through the session (decode, unmask, echo, encode)

    for size in [32, 4096] {
        Benchmark("WebSocket echo through the session, \(size) B") { benchmark in
            let channel = try EchoPipeline.make()
            let frame = EchoPipeline.maskedFrame(size: size)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                try channel.writeInbound(frame)
                while let bytes = try channel.readOutbound(as: ByteBuffer.self) { blackHole(bytes) }
            }
            benchmark.stopMeasurement()
            _ = try? channel.finish(acceptAlreadyClosed: true)
        }
    }

    // 4,096 bytes each: ASCII (JSON-like chat), Latin text with accents (two-byte sequences
    // between ASCII), and Japanese (three-byte sequences only). Thresholds: ASCII and mixed.
    for (name, unit) in [("ASCII", "hello world "), ("mixed", "héllo wörld "), ("CJK", "日本語のテキスト")] {
        Benchmark("UTF-8 validation, 4 KiB of \(name) text") { benchmark in
            var bytes = Array(String(repeating: unit, count: 4096 / unit.utf8.count + 1).utf8.prefix(4096))
            // A character cut by the 4,096th byte becomes spaces.
            var last = bytes.count - 1
            while String(validating: bytes, as: UTF8.self) == nil {
                bytes[last] = 0x20
                last -= 1
            }
            precondition(bytes.count == 4096)
            let text = ByteBuffer(bytes: bytes)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(UTF8Validator.isValid(text))
            }
        }
    }

    // MARK: The worker protocol

    for size in [32, 4096] {
        let payload = ByteBuffer(repeating: 0x61, count: size)
        Benchmark("Worker frame encode, message \(size) B") { benchmark in
            var buffer = ByteBuffer()
            buffer.reserveCapacity(size + 64)
            for _ in benchmark.scaledIterations {
                buffer.clear()
                WorkerFrameCodec.encode(.message(connection: 42, kind: .binary, payload: payload), into: &buffer)
                blackHole(buffer.readableBytes)
            }
        }
        Benchmark("Worker frame decode, send \(size) B") { benchmark in
            let wire = WorkerFrameCodec.encode(.send(connection: 42, kind: .binary, payload: payload))
            var decoder = WorkerFrameDecoder(maxFrameBytes: 1 << 20)
            for _ in benchmark.scaledIterations {
                var input = wire
                blackHole(try decoder.decode(buffer: &input))
            }
        }
    }

    // MARK: Hub fan-out

    for subscribers in [10, 1_000] {
        Benchmark(
            "Hub publish to \(subscribers) subscribers",
            configuration: .init(scalingFactor: subscribers >= 1_000 ? .one : .kilo)
        ) { benchmark in
            let hub = Hub()
            let receivers = (0..<subscribers).map { CountingSubscriber(id: UInt64($0)) }
            for receiver in receivers { hub.subscribe(receiver, to: "prices") }
            let message = WebSocketMessage.fanOut(kind: .text, data: ByteBuffer(string: "{\"price\":101.5}"))
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(hub.publish(message, to: "prices"))
            }
            benchmark.stopMeasurement()
            precondition(
                receivers.allSatisfy { $0.count == receivers[0].count && $0.count > 0 },
                "every subscriber gets every publish"
            )
        }
    }
}

/// The pipeline a client's connection has after the upgrade, minus TLS: the session (which
/// reads and writes the frames itself) running the echo application.
enum EchoPipeline {
    static func make() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        let session = WebSocketSessionHandler(
            configuration: .init(routeName: "echo", limits: .init(), deflate: nil, subprotocol: nil),
            application: EchoApplication(),
            peer: "benchmark",
            logger: Logger(label: "benchmark", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        try channel.pipeline.syncOperations.addHandler(session)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    /// A client's binary frame as it arrives on the wire: masked, with its header.
    static func maskedFrame(size: Int) -> ByteBuffer {
        let key = WebSocketMaskingKey([7, 1, 9, 3])!
        var data = ByteBuffer(repeating: 0x5a, count: size)
        data.webSocketMask(key)
        var wire = ByteBuffer()
        wire.writeInteger(UInt8(0x82))  // FIN, binary
        if size < 126 {
            wire.writeInteger(UInt8(0x80 | size))
        } else {
            wire.writeInteger(UInt8(0x80 | 126))
            wire.writeInteger(UInt16(size))
        }
        wire.writeBytes(key)
        wire.writeImmutableBuffer(data)
        return wire
    }
}

/// A hub subscriber that only counts: the hub's own cost, without a socket behind it.
final class CountingSubscriber: HubSubscriber, @unchecked Sendable {
    let subscriberID: UInt64
    /// Touched only by the benchmark's thread (the hub delivers on the publisher's thread).
    private(set) var count = 0

    init(id: UInt64) { subscriberID = id }

    func deliver(_ message: WebSocketMessage) {
        count += 1
    }
}

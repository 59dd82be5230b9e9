import GatewayCore
import GatewayMetrics
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One supervised worker process: started with its socket path in `WSSGATE_WORKER_SOCKET`,
/// its standard output and error forwarded to the gateway's log line by line, restarted with
/// backoff when it exits, and stopped with SIGTERM (then SIGKILL after `stopTimeout`).
public final class WorkerProcess: Sendable {
    public let name: String
    private let command: String
    private let arguments: [String]
    private let environment: [String]
    private let socketPath: String
    private let stopTimeout: TimeAmount
    private let metrics: WorkerMetrics
    private let logger: Logger

    private struct State {
        var child: ChildProcess?
        var running = false
        var stopping = false
        var restarts = 0
    }
    private let state = NIOLockedValueBox(State())
    private let group: any EventLoopGroup

    init(
        name: String,
        command: String,
        arguments: [String],
        environment: [String],
        socketPath: String,
        stopTimeout: TimeAmount,
        group: any EventLoopGroup,
        logger: Logger,
        metrics: WorkerMetrics
    ) {
        self.metrics = metrics
        self.name = name
        self.command = command
        self.arguments = arguments
        self.environment = environment
        self.socketPath = socketPath
        self.stopTimeout = stopTimeout
        self.group = group
        var logger = logger
        logger[metadataKey: "instance"] = .string(name)
        self.logger = logger
    }

    var restarts: Int { state.withLockedValue { $0.restarts } }

    /// Runs the process until `stop()`, restarting it whenever it exits.
    func run() async {
        var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(10))
        while !state.withLockedValue({ $0.stopping }) {
            let started = NIODeadline.now()
            let status = await runOnce()
            if state.withLockedValue({ $0.stopping }) { return }
            state.withLockedValue { $0.restarts += 1 }
            metrics.restarted()
            // A process that ran for a while was healthy: start over from the short delay.
            if NIODeadline.now() - started > .seconds(10) { backoff.reset() }
            let delay = backoff.next()
            logger.warning(
                "worker exited; restarting",
                metadata: [
                    "status": .string(status),
                    "restart_in_ms": .stringConvertible(delay.nanoseconds / 1_000_000),
                ]
            )
            try? await Task.sleep(nanoseconds: UInt64(delay.nanoseconds))
        }
    }

    private func runOnce() async -> String {
        unlink(socketPath)
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("WSSGATE_") }
        for entry in self.environment {
            let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            environment[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        environment["WSSGATE_WORKER_SOCKET"] = socketPath
        environment["WSSGATE_WORKER_NAME"] = name
        // The worker libraries exit when this process is gone, so a gateway that dies without
        // stopping its workers (SIGKILL, a crash) leaves none behind.
        environment["WSSGATE_PARENT_PID"] = String(getpid())
        let child: ChildProcess
        do {
            child = try ChildReaper.shared.spawn {
                try ChildProcess.spawn(path: Self.resolve(command), arguments: arguments, environment: environment)
            }
        } catch {
            logger.error("cannot start worker", metadata: ["command": .string(command), "error": .string("\(error)")])
            return "not started"
        }
        state.withLockedValue {
            $0.child = child
            $0.running = true
        }
        logger.info("worker started", metadata: ["pid": .stringConvertible(child.pid), "socket": .string(socketPath)])
        forwardLines(from: child.stdout, stream: "stdout")
        forwardLines(from: child.stderr, stream: "stderr")
        let status = await ChildReaper.shared.waitForExit(child.pid)
        state.withLockedValue { $0.running = false }
        return status
    }

    /// SIGTERM, then SIGKILL if it is still there after the stop timeout.
    func stop() async {
        let child = state.withLockedValue { state -> ChildProcess? in
            state.stopping = true
            return state.running ? state.child : nil
        }
        guard let child else { return }
        child.signal(SIGTERM)
        let deadline = NIODeadline.now() + stopTimeout
        while state.withLockedValue({ $0.running }) && NIODeadline.now() < deadline {
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        if state.withLockedValue({ $0.running }) {
            logger.warning("worker ignored SIGTERM; killing it")
            child.signal(SIGKILL)
        }
        unlink(socketPath)
    }

    /// Forwards a child's output to the log, a line at a time, through NIO.
    private func forwardLines(from descriptor: Int32, stream: String) {
        let logger = self.logger
        _ = NIOPipeBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineDecoder()))
                    try channel.pipeline.syncOperations.addHandler(LineLogger(logger: logger, stream: stream))
                }
            }
            .takingOwnershipOfDescriptor(input: descriptor)
    }

    /// A bare command name is looked up next to the gateway's own executable first (where the
    /// bundled workers are), then in PATH, as a shell would.
    public static func resolve(_ command: String) -> String {
        if command.contains("/") { return command }
        var directories: [String] = []
        if let own = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            directories.append(String(own[..<(own.lastIndex(of: "/") ?? own.endIndex)]))
        }
        directories += (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(
            String.init
        )
        for directory in directories {
            let candidate = "\(directory)/\(command)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return command
    }
}

/// Splits a byte stream into lines; a line longer than 16 KiB is cut, so a worker that never
/// ends a line cannot grow the gateway's buffer.
struct LineDecoder: ByteToMessageDecoder {
    typealias InboundOut = String
    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let line = buffer.readString(length: newline - buffer.readerIndex)!
            buffer.moveReaderIndex(forwardBy: 1)
            context.fireChannelRead(wrapInboundOut(line))
            return .continue
        }
        if buffer.readableBytes > 16384 {
            context.fireChannelRead(wrapInboundOut(buffer.readString(length: buffer.readableBytes)!))
            return .continue
        }
        return .needMoreData
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        if buffer.readableBytes > 0 {
            context.fireChannelRead(wrapInboundOut(buffer.readString(length: buffer.readableBytes)!))
        }
        return .needMoreData
    }
}

/// Writes each line of a worker's output to the gateway's log, with the instance's name.
final class LineLogger: ChannelInboundHandler {
    typealias InboundIn = String
    let logger: Logger
    let stream: String

    init(logger: Logger, stream: String) {
        self.logger = logger
        self.stream = stream
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        if !line.isEmpty {
            logger.info("worker output", metadata: ["stream": .string(stream), "line": .string(line)])
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

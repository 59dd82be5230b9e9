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
///
/// It runs while it is *wanted*: an instance of a hibernating route (`min_instances` below
/// `instances`) is woken when a connection needs it and put to sleep when idle; a sleeping
/// process is not restarted.
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
        /// Opens when the running child has exited (and was reaped).
        var exited = Latch(open: true)
        var stopping = false
        var restarts = 0
        var wanted: Bool
        /// Tasks waiting for the process to be wanted (its runner, the pool's link keepers).
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state: NIOLockedValueBox<State>
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
        metrics: WorkerMetrics,
        wanted: Bool = true
    ) {
        self.state = NIOLockedValueBox(State(wanted: wanted))
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

    /// Whether the process should run now (it may still be starting, or restarting).
    var isWanted: Bool { state.withLockedValue { $0.wanted && !$0.stopping } }

    /// The process's id while it runs.
    var pid: Int32? { state.withLockedValue { $0.running ? $0.child?.pid : nil } }

    /// Returns once the process is wanted, or stopping for good.
    func untilWanted() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let now = state.withLockedValue { state -> Bool in
                if state.wanted || state.stopping { return true }
                state.waiters.append(waiter)
                return false
            }
            if now { waiter.resume() }
        }
    }

    /// Wants the process: it starts (a hibernating route's instance woken by work).
    func wake() {
        let waiters = state.withLockedValue { state in
            state.wanted = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Stops the process without ending its supervision: it starts again on `wake()`.
    func sleep() async {
        let child = state.withLockedValue { state -> ChildProcess? in
            state.wanted = false
            return state.running ? state.child : nil
        }
        if let child { await terminate(child) }
    }

    /// Runs the process until `stop()`, restarting it whenever it exits while wanted.
    func run() async {
        var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(10))
        while !state.withLockedValue({ $0.stopping }) {
            await untilWanted()
            if state.withLockedValue({ $0.stopping }) { return }
            let started = NIODeadline.now()
            let status = await runOnce()
            if state.withLockedValue({ $0.stopping }) { return }
            if !isWanted {
                // Put to sleep on purpose: not a crash, and the next start is not a restart.
                backoff.reset()
                continue
            }
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
        let unwanted = state.withLockedValue { state -> Bool in
            state.child = child
            state.running = true
            state.exited = Latch()
            return !state.wanted || state.stopping
        }
        logger.info("worker started", metadata: ["pid": .stringConvertible(child.pid), "socket": .string(socketPath)])
        // Put to sleep (or stopped) while it was being spawned: the sleeper found nothing to
        // signal, so it is signalled here.
        if unwanted { child.signal(SIGTERM) }
        forwardLines(from: child.stdout, stream: "stdout")
        forwardLines(from: child.stderr, stream: "stderr")
        let status = await ChildReaper.shared.waitForExit(child.pid)
        let exited = state.withLockedValue { state in
            state.running = false
            return state.exited
        }
        exited.open()
        return status
    }

    /// SIGTERM, then SIGKILL if it is still there after the stop timeout.
    func stop() async {
        let (child, waiters) = state.withLockedValue { state -> (ChildProcess?, [CheckedContinuation<Void, Never>]) in
            state.stopping = true
            defer { state.waiters = [] }
            return (state.running ? state.child : nil, state.waiters)
        }
        for waiter in waiters { waiter.resume() }
        if let child { await terminate(child) }
    }

    /// SIGTERM, then SIGKILL if the process is still there after the stop timeout.
    private func terminate(_ child: ChildProcess) async {
        let exited = state.withLockedValue { $0.exited }
        child.signal(SIGTERM)
        if await !exited.opens(within: stopTimeout, on: group.next()) {
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

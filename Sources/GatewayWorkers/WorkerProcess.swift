import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// One supervised worker process: started with its socket path in `WSSGATE_WORKER_SOCKET`,
/// its standard output and error forwarded to the gateway's log line by line, restarted with
/// backoff when it exits, and stopped with SIGTERM (then SIGKILL after `stopTimeout`).
final class WorkerProcess: Sendable {
    let name: String
    private let command: String
    private let arguments: [String]
    private let environment: [String]
    private let socketPath: String
    private let stopTimeout: TimeAmount
    private let logger: Logger

    private struct State {
        var process: Process?
        var stopping = false
        var restarts = 0
    }
    private let state = NIOLockedValueBox(State())

    init(name: String, command: String, arguments: [String], environment: [String], socketPath: String, stopTimeout: TimeAmount, logger: Logger) {
        self.name = name
        self.command = command
        self.arguments = arguments
        self.environment = environment
        self.socketPath = socketPath
        self.stopTimeout = stopTimeout
        var logger = logger
        logger[metadataKey: "instance"] = .string(name)
        self.logger = logger
    }

    var restarts: Int { state.withLockedValue { $0.restarts } }
    var pid: Int32? { state.withLockedValue { $0.process?.processIdentifier } }

    /// Runs the process until `stop()`, restarting it whenever it exits.
    func run() async {
        var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(10))
        while !state.withLockedValue({ $0.stopping }) {
            let started = NIODeadline.now()
            let status = await runOnce()
            if state.withLockedValue({ $0.stopping }) { return }
            state.withLockedValue { $0.restarts += 1 }
            // A process that ran for a while was healthy: start over from the short delay.
            if NIODeadline.now() - started > .seconds(10) { backoff.reset() }
            let delay = backoff.next()
            logger.warning("worker exited; restarting", metadata: [
                "status": .string(status),
                "restart_in_ms": .stringConvertible(delay.nanoseconds / 1_000_000),
            ])
            try? await Task.sleep(nanoseconds: UInt64(delay.nanoseconds))
        }
    }

    private func runOnce() async -> String {
        unlink(socketPath)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.resolve(command))
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("WSSGATE_") }
        for entry in self.environment {
            let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            environment[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        environment["WSSGATE_WORKER_SOCKET"] = socketPath
        environment["WSSGATE_WORKER_NAME"] = name
        process.environment = environment
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        forwardLines(from: output, stream: "stdout")
        forwardLines(from: errors, stream: "stderr")

        return await withCheckedContinuation { (continuation: CheckedContinuation<String, Never>) in
            process.terminationHandler = { process in
                output.fileHandleForReading.readabilityHandler = nil
                errors.fileHandleForReading.readabilityHandler = nil
                let reason = process.terminationReason == .uncaughtSignal ? "signal \(process.terminationStatus)" : "exit \(process.terminationStatus)"
                continuation.resume(returning: reason)
            }
            do {
                try process.run()
                state.withLockedValue { $0.process = process }
                logger.info("worker started", metadata: ["pid": .stringConvertible(process.processIdentifier), "socket": .string(socketPath)])
            } catch {
                logger.error("cannot start worker", metadata: ["command": .string(command), "error": .string("\(error)")])
                continuation.resume(returning: "not started: \(error)")
            }
        }
    }

    /// SIGTERM, then SIGKILL if it is still there after the stop timeout.
    func stop() async {
        let process = state.withLockedValue { state -> Process? in
            state.stopping = true
            return state.process
        }
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = NIODeadline.now() + stopTimeout
        while process.isRunning && NIODeadline.now() < deadline {
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        if process.isRunning {
            logger.warning("worker ignored SIGTERM; killing it")
            kill(process.processIdentifier, SIGKILL)
        }
        unlink(socketPath)
    }

    private func forwardLines(from pipe: Pipe, stream: String) {
        let buffer = NIOLockedValueBox<[UInt8]>([])
        let logger = self.logger
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            let lines: [String] = buffer.withLockedValue { pending in
                if data.isEmpty {
                    defer { pending.removeAll() }
                    return pending.isEmpty ? [] : [String(decoding: pending, as: UTF8.self)]
                }
                pending.append(contentsOf: data)
                var lines: [String] = []
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    lines.append(String(decoding: pending[..<newline], as: UTF8.self))
                    pending.removeSubrange(...newline)
                }
                // A worker that never ends a line must not grow this buffer forever.
                if pending.count > 16384 {
                    lines.append(String(decoding: pending, as: UTF8.self))
                    pending.removeAll()
                }
                return lines
            }
            for line in lines where !line.isEmpty {
                logger.info("worker output", metadata: ["stream": .string(stream), "line": .string(line)])
            }
            if data.isEmpty { handle.readabilityHandler = nil }
        }
    }

    /// A bare command name is looked up in PATH, as a shell would.
    static func resolve(_ command: String) -> String {
        if command.contains("/") { return command }
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(directory)/\(command)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return command
    }
}

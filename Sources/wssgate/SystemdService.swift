import GatewayEdge
import GatewayWorkers
import Logging
import NIOCore
import ServiceLifecycle
import Systemd

/// Keeps systemd informed while the gateway runs: `STATUS=` with live figures every few
/// seconds, and `WATCHDOG=1` at half of `WATCHDOG_USEC` — sent only when every event loop
/// answers, so a wedged gateway is restarted rather than kept alive by a timer.
struct SystemdService: Service, CustomStringConvertible {
    var description: String { "SystemdService" }

    let notifier: SystemdNotifier
    let watchdog: WatchdogSettings?
    let state: GatewayState
    /// The worker pools in force (a reload may change them).
    let pools: @Sendable () -> [WorkerPool]
    let group: any EventLoopGroup
    let logger: Logger

    var status: String {
        let workers = pools().reduce((0, 0)) { totals, pool in
            let statistics = pool.statistics
            return (totals.0 + statistics.liveLinks, totals.1 + pool.instanceCount)
        }
        var text =
            "\(state.readiness.rawValue): \(state.httpConnections) connections, \(state.webSocketSessions) websockets"
        if workers.1 > 0 { text += ", workers \(workers.0)/\(workers.1) linked" }
        return text
    }

    func run() async throws {
        guard notifier.isActive else {
            try? await gracefulShutdown()
            return
        }
        await withDiscardingTaskGroup { tasks in
            tasks.addTask {
                while !Task.isCancelled {
                    notifier.notify("STATUS=\(status)")
                    try? await Task.sleep(nanoseconds: 5_000_000_000)
                }
            }
            if let watchdog {
                tasks.addTask {
                    while !Task.isCancelled {
                        if await eventLoopsAnswer(within: .nanoseconds(Int64(watchdog.pingIntervalNanoseconds / 2))) {
                            notifier.notify("WATCHDOG=1")
                        } else {
                            logger.error("an event loop did not answer: withholding the watchdog ping")
                        }
                        try? await Task.sleep(nanoseconds: watchdog.pingIntervalNanoseconds)
                    }
                }
            }
            tasks.addTask {
                try? await gracefulShutdown()
            }
            try? await gracefulShutdown()
            tasks.cancelAll()
        }
    }

    private func eventLoopsAnswer(within timeout: TimeAmount) async -> Bool {
        let deadline = NIODeadline.now() + timeout
        for loop in group.makeIterator() {
            let answered = loop.submit { true }
            let timer = loop.scheduleTask(deadline: deadline) {}
            defer { timer.cancel() }
            guard (try? await answered.get()) == true, NIODeadline.now() <= deadline else { return false }
        }
        return true
    }
}

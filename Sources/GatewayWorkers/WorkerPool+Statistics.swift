import GatewayCore
import GatewayMetrics
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// The pool's counters, for logs, metrics and tests.
extension WorkerPool {
    /// Counters of the pool, for logs and tests.
    public struct Statistics: Sendable, Equatable {
        /// Instances with at least one live link.
        public var liveLinks = 0
        public var connections = 0
        public var waitingConnections = 0
        /// Messages sent to an instance that died before acknowledging them.
        public var lostMessages = 0
        public var linkErrors = 0
        public var sendQueueOverflows = 0
        public var restarts = 0
        /// Supervised instances wanted now (running, starting or restarting).
        public var awakeInstances = 0
    }

    public var statistics: Statistics {
        state.withLockedValue { state in
            let pool = state.placement.pool
            var statistics = Statistics()
            statistics.lostMessages = pool.counters.lostMessages
            statistics.linkErrors = pool.counters.linkErrors
            statistics.sendQueueOverflows = pool.counters.sendQueueOverflows
            statistics.liveLinks = Set(pool.links.values.map(\.instance)).count
            statistics.connections = pool.connections.count
            statistics.waitingConnections = pool.waiting.count
            statistics.restarts = state.instances.reduce(0) { $0 + ($1.process?.restarts ?? 0) }
            statistics.awakeInstances = pool.current.filter { pool.awake[$0] }.count
            return statistics
        }
    }

    /// Messages sent to an instance that died before acknowledging them (at-most-once).
    func countLost(_ messages: Int, connection: UInt64) {
        guard messages > 0 else { return }
        state.withLockedValue { $0.placement.count { $0.lostMessages += messages } }
        metrics.lost(messages)
        logger.warning(
            "messages lost with a dead worker instance",
            metadata: ["connection": .stringConvertible(connection), "messages": .stringConvertible(messages)]
        )
    }

    func countLinkError() {
        state.withLockedValue { $0.placement.count { $0.linkErrors += 1 } }
        metrics.linkFailed()
    }
    func countOverflow() { state.withLockedValue { $0.placement.count { $0.sendQueueOverflows += 1 } } }
    func countAutoResponse() { metrics.autoResponded() }
    func countDroppedBeforeOpen() {
        countOverflow()
        metrics.droppedBeforeOpen()
    }
}

import GatewayEdge
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

#if canImport(Glibc)
import CMalloc
#endif

/// Gives the heap pages of closed connections back to the system (see `HeapTrimPolicy`), off
/// the event loops: a trim takes malloc's locks for milliseconds.
struct HeapTrimmer: Service {
    var state: GatewayState
    var interval: TimeAmount = .seconds(2)
    var policy = HeapTrimPolicy()
    var logger: Logger

    func run() async throws {
        let (state, interval, start, logger) = (self.state, self.interval, self.policy, self.logger)
        try? await cancelWhenGracefulShutdown {
            var policy = start
            while true {
                try await Task.sleep(nanoseconds: UInt64(interval.nanoseconds))
                guard policy.observe(connections: state.httpConnections) else { continue }
                try await NIOThreadPool.singleton.runIfActive { Self.trim() }
                logger.debug("heap trimmed", metadata: ["connections": .stringConvertible(state.httpConnections)])
            }
        }
    }

    /// Returns free pages at the top of every arena and unused pages inside them.
    static func trim() {
        #if canImport(Glibc)
        _ = malloc_trim(0)
        #endif
    }
}

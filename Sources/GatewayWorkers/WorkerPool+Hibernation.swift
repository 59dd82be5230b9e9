import GatewayCore
import GatewayMetrics
import GatewayWebSocket
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Hibernation: instances beyond `min_instances` sleep when idle and wake on demand.
extension WorkerPool {
    /// Puts instances beyond `min_instances` to sleep once nothing has passed over their links
    /// for `idle_stop`.
    func watchIdleInstances() async {
        let quarter = settings.idleStop.nanoseconds / 4
        let interval = TimeAmount.nanoseconds(min(max(quarter, 100_000_000), 1_000_000_000))
        while !shuttingDown {
            try? await Task.sleep(nanoseconds: UInt64(interval.nanoseconds))
            if shuttingDown { return }
            for index in await idleInstances() {
                await putToSleep(index)
            }
        }
    }

    /// Awake instances idle for `idle_stop`, as many as may stop (the minimum keeps running).
    func idleInstances() async -> [Int] {
        let (candidates, spare, links) = state.withLockedValue { state in
            let (awake, spare) = state.placement.sleepCandidates
            return (awake, spare, Array(state.links.values))
        }
        guard spare > 0 else { return [] }
        let now = NIODeadline.now()
        var idle: [Int] = []
        for index in candidates where idle.count < spare {
            var latest = state.withLockedValue { $0.placement.pool.awakeSince[index] }
            for link in links where link.instance == index {
                if let last = try? await link.eventLoop.submit({ link.lastActivity }).get() {
                    latest = max(latest, last)
                }
            }
            if now - latest >= settings.idleStop { idle.append(index) }
        }
        return idle
    }

    /// Stops an idle instance while its clients stay: every connection on it is suspended
    /// (the worker releases it, with its attachment set), then its links close and the process
    /// gets SIGTERM. Connections still not released after `stop_timeout` are treated as an
    /// instance death (at most once). Connections that came to need a worker meanwhile wake an
    /// instance again.
    func putToSleep(_ index: Int) async {
        let (instance, links, connections) = state.withLockedValue { state in
            let (links, connections) = state.placement.sleepBegins(index)
            return (state.instances[index], state.links(links), connections)
        }
        logger.info(
            "worker instance idle; putting it to sleep",
            metadata: ["instance": .string(instance.name), "connections": .stringConvertible(connections)]
        )
        await release(from: [index], links: links) { _ in }
        for link in links { try? await link.channel.close() }
        await instance.process?.sleep()
        let woken = state.withLockedValue { $0.placement.asleep(index, now: .now()) }
        metrics.idleStopped()
        logger.info("worker instance asleep", metadata: ["instance": .string(instance.name)])
        if let woken { started(woken) }
    }

    /// Suspends every connection on `links` (of `instances`) until none is left on them or
    /// `stop_timeout` passes, looking again at each release. Asked again every 250 ms: a
    /// connection whose `open` was on its way when the first request went out is asked too.
    /// `progress` hears the connections left.
    func release(
        from instances: [Int],
        links: [WorkerLink],
        progress: (Int) -> Void
    ) async {
        let deadline = NIODeadline.now() + settings.stopTimeout
        let loop = group.next()
        var asked = NIODeadline.distantPast
        while true {
            let beat = changed.next(on: loop)
            let left = state.withLockedValue { $0.placement.pool.load(of: instances) }
            progress(left)
            let now = NIODeadline.now()
            guard left > 0, now < deadline, !shuttingDown else {
                changed.forget(beat)
                return
            }
            if now - asked >= .milliseconds(250) {
                asked = now
                for link in links { link.eventLoop.execute { link.suspendAll() } }
            }
            _ = await changed.wait(for: beat, within: min(deadline, asked + .milliseconds(250)) - now)
        }
    }
}

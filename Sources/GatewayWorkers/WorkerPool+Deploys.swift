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

/// Rolling deploys: a new generation of instances links, the old one's connections move to it
/// (each released by its worker), then the old one stops; a deploy that cannot link is abandoned.
extension WorkerPool {
    /// What the admin API shows of the route.
    public var status: WorkerRouteStatus {
        state.withLockedValue { locked in
            let state = locked.placement.pool
            let instances = locked.instances
            var linked = Set<Int>()
            for link in state.links.values { linked.insert(link.instance) }
            var shown = Array(state.current)
            if let deployment = state.deployment, deployment.inProgress {
                // The generation being replaced (or the one starting) is shown beside it.
                let names = Set(deployment.from + deployment.to)
                shown = instances.indices.filter {
                    state.current.contains($0)
                        || (names.contains(instances[$0].name) && !state.retired.contains($0))
                }
            }
            let shownInstances = shown.map { index -> WorkerRouteStatus.Instance in
                let instance = instances[index]
                let condition: WorkerRouteStatus.Instance.State
                if !state.current.contains(index) {
                    condition = linked.contains(index) || state.load[index] > 0 ? .leaving : .starting
                } else if !state.awake[index] {
                    condition = .asleep
                } else {
                    condition = linked.contains(index) ? .running : .starting
                }
                return .init(
                    name: instance.name,
                    pid: instance.process?.pid,
                    state: condition,
                    connections: state.load[index]
                )
            }
            var deployment = state.deployment
            if let from = deployment?.from, deployment?.phase == .moving {
                let names = Set(from)
                deployment?.remaining = instances.indices.filter { names.contains(instances[$0].name) }
                    .reduce(0) { $0 + state.load[$1] }
            }
            var command: String?
            var arguments: [String] = []
            if case .supervised(let running, let args, _, _) = state.source {
                command = running
                arguments = args
            }
            return WorkerRouteStatus(
                route: route.name,
                command: command,
                arguments: arguments,
                instances: shownInstances,
                connections: state.connections.count,
                deployment: deployment
            )
        }
    }

    /// Starts a rolling deploy: a new generation of instances running `command` (nil: the
    /// running one again) starts beside the old; once the new ones are linked, every connection
    /// leaves its old instance (`suspend`, then the worker's `release`) and opens on a new one
    /// with its attachment (a `resumed` open), and the old instances stop. Messages the old
    /// instance was sent are held until it acknowledges them (it releases a connection only
    /// after): none is re-sent, none lost. Answers the route's state.
    public func deploy(_ command: WorkerProgram?) throws(RouteAdministrationError) -> WorkerRouteStatus {
        let plan = try state.withLockedValue { state in
            let instances = state.instances
            return state.placement.beginDeploy(
                command,
                route: route.name,
                names: { instances[$0].name },
                wallClockMillis: Self.wallClockMillis()
            )
        }.get()
        let fresh = makeGeneration(plan.command, count: plan.count, awake: plan.awake)
        state.withLockedValue { state in state.placement.deployStarting(fresh.map { state.instances[$0].name }) }
        logger.info(
            "deploy started",
            metadata: [
                "command": .string(plan.command.command),
                "from": .string(plan.from.map { instance($0).name }.joined(separator: ",")),
                "to": .string(fresh.map { instance($0).name }.joined(separator: ",")),
            ]
        )
        for index in fresh { jobs.continuation.yield(.instance(index)) }
        jobs.continuation.yield(.deploy(from: plan.from, to: fresh, command: plan.command))
        return status
    }

    /// The deploy's steps, after `deploy` made the new generation.
    func carryOut(from old: Range<Int>, to new: Range<Int>, command: WorkerProgram) async {
        // 1. The new instances that should run link (within resume_timeout: what a connection
        // whose instance died waits for one).
        guard await newGenerationLinked(new) else { return }
        // 2. The new generation takes new connections; the old one's leave it.
        let moving = await move(from: old, to: new, command: command)
        // 3. The old instances stop; a connection one did not release resumes like after a death.
        let forced = await stop(old)
        let finished = state.withLockedValue { $0.placement.deployDone(wallClockMillis: Self.wallClockMillis()) }
        logger.info(
            "deploy done",
            metadata: [
                "deploy": .stringConvertible(finished?.number ?? 0),
                "moved": .stringConvertible(moving - forced), "forced": .stringConvertible(forced),
                "milliseconds": .stringConvertible((finished?.finishedAt ?? 0) - (finished?.startedAt ?? 0)),
            ]
        )
    }

    /// Whether the new instances that should run linked within `resume_timeout`; if not, the
    /// deploy is abandoned (false), as it is when the pool stops meanwhile.
    func newGenerationLinked(_ new: Range<Int>) async -> Bool {
        let deadline = NIODeadline.now() + settings.resumeTimeout
        let loop = group.next()
        while true {
            let beat = changed.next(on: loop)
            let (linked, stopped) = state.withLockedValue { ($0.placement.isLinked(new), $0.placement.isStopped) }
            let now = NIODeadline.now()
            guard !linked, !stopped, now < deadline else {
                changed.forget(beat)
                if linked { return true }
                if !stopped {
                    let timeout = ValueParsing.format(settings.resumeTimeout)
                    await abandon(new, reason: "the new instances did not link within \(timeout)")
                }
                return false
            }
            _ = await changed.wait(for: beat, within: deadline - now)
        }
    }

    /// Puts the new generation in force and moves the old one's connections to it (each
    /// released by its worker, within stop_timeout); returns how many there were.
    func move(from old: Range<Int>, to new: Range<Int>, command: WorkerProgram) async -> Int {
        let (links, waiting, moving) = state.withLockedValue { state in
            let (links, waiting, moving) = state.placement.moveInForce(from: old, to: new, command: command)
            return (state.links(links), state.connections(waiting), moving)
        }
        logger.info("deploy moving connections", metadata: ["connections": .stringConvertible(moving)])
        for connection in waiting { attach(connection, wake: true) }
        var lastReport = NIODeadline.now()
        await release(from: Array(old), links: links) { left in
            state.withLockedValue { $0.placement.remaining(left) }
            if NIODeadline.now() - lastReport >= .seconds(1) {
                lastReport = .now()
                logger.info("deploy moving connections", metadata: ["remaining": .stringConvertible(left)])
            }
        }
        return moving
    }

    /// Retires and stops the old generation; returns how many connections it still held
    /// (they resume on the new one).
    func stop(_ old: Range<Int>) async -> Int {
        let forced = state.withLockedValue { $0.placement.retireGeneration(old) }
        if forced > 0 {
            logger.warning(
                "deploy: connections not released within stop_timeout resume on the new instances",
                metadata: ["connections": .stringConvertible(forced)]
            )
        }
        logger.info("deploy stopping old instances")
        let oldLinks = state.withLockedValue { $0.links($0.placement.pool.linkIDs(of: old)) }
        for link in oldLinks { try? await link.channel.close() }
        await withDiscardingTaskGroup { group in
            for index in old {
                let instance = instance(index)
                group.addTask {
                    await instance.process?.stop()
                    unlink(instance.socketPath)
                }
            }
        }
        return forced
    }

    /// The new generation did not come up: it stops, the old one serves on.
    func abandon(_ new: Range<Int>, reason: String) async {
        let links = state.withLockedValue { state in
            state.links(state.placement.abandonDeploy(new, reason: reason, wallClockMillis: Self.wallClockMillis()))
        }
        logger.error("deploy failed; the running instances serve on", metadata: ["error": .string(reason)])
        for link in links { try? await link.channel.close() }
        for index in new {
            let instance = instance(index)
            await instance.process?.stop()
            unlink(instance.socketPath)
        }
    }

    static func wallClockMillis() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}

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
        state.withLockedValue { state in
            var linked = Set<Int>()
            for link in state.links.values { linked.insert(link.instance) }
            var shown = Array(state.current)
            if let deployment = state.deployment, deployment.inProgress {
                // The generation being replaced (or the one starting) is shown beside it.
                let names = Set(deployment.from + deployment.to)
                shown = state.instances.indices.filter {
                    state.current.contains($0)
                        || (names.contains(state.instances[$0].name) && !state.retired.contains($0))
                }
            }
            let instances = shown.map { index -> WorkerRouteStatus.Instance in
                let instance = state.instances[index]
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
                deployment?.remaining = state.instances.indices.filter { names.contains(state.instances[$0].name) }
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
                instances: instances,
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
        typealias Plan = (from: Range<Int>, count: Int, awake: Int, command: WorkerProgram)
        let plan = try state.withLockedValue { state -> Result<Plan, RouteAdministrationError> in
            guard !state.shuttingDown, !state.retiring else {
                return .failure(RouteAdministrationError(.conflict, "the route's pool is being replaced or stopped"))
            }
            if let deployment = state.deployment, deployment.inProgress {
                return .failure(
                    RouteAdministrationError(
                        .conflict,
                        "deploy \(deployment.number) of route \(route.name) is still \(deployment.phase.rawValue)"
                    )
                )
            }
            guard case .supervised(let running, let arguments, let environment, let count) = state.source else {
                return .failure(
                    RouteAdministrationError(
                        .conflict,
                        "route \(route.name) uses an external worker (worker.socket): deploy it where it runs"
                    )
                )
            }
            let awake = state.current.filter { state.awake[$0] }.count
            let command = command ?? WorkerProgram(command: running, arguments: arguments, environment: environment)
            // In force at once: a second deploy is refused from here on.
            state.deployment = WorkerRouteStatus.Deployment(
                number: (state.deployment?.number ?? 0) + 1,
                phase: .starting,
                command: command.command,
                arguments: command.arguments,
                from: state.current.map { state.instances[$0].name },
                to: [],
                startedAt: Self.wallClockMillis()
            )
            return .success((state.current, count, max(awake, settings.alwaysRunning), command))
        }.get()
        let fresh = makeGeneration(plan.command, count: plan.count, awake: plan.awake)
        state.withLockedValue { state in state.deployment?.to = fresh.map { state.instances[$0].name } }
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
        let finished = state.withLockedValue { state in
            state.deployment?.phase = .done
            state.deployment?.remaining = 0
            state.deployment?.finishedAt = Self.wallClockMillis()
            return state.deployment
        }
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
        let wanted = state.withLockedValue { state in new.filter { state.awake[$0] } }
        let deadline = NIODeadline.now() + settings.resumeTimeout
        while !wanted.allSatisfy({ index in state.withLockedValue { $0.linkCount(of: index) > 0 } }) {
            if shuttingDown { return false }
            guard NIODeadline.now() < deadline else {
                await abandon(
                    new,
                    reason: "the new instances did not link within \(ValueParsing.format(settings.resumeTimeout))"
                )
                return false
            }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        return true
    }

    /// Puts the new generation in force and moves the old one's connections to it (each
    /// released by its worker, within stop_timeout); returns how many there were.
    func move(from old: Range<Int>, to new: Range<Int>, command: WorkerProgram) async -> Int {
        let (links, waiting, moving) = state.withLockedValue { state in
            state.current = new
            state.source = .supervised(
                command: command.command,
                arguments: command.arguments,
                environment: command.environment,
                instances: new.count
            )
            let moving = old.reduce(0) { $0 + state.load[$1] }
            state.deployment?.phase = .moving
            state.deployment?.moving = moving
            state.deployment?.remaining = moving
            return (state.links.values.filter { old.contains($0.instance) }, Array(state.waiting.values), moving)
        }
        logger.info("deploy moving connections", metadata: ["connections": .stringConvertible(moving)])
        for connection in waiting { attach(connection, wake: true) }
        var lastReport = NIODeadline.now()
        await release(from: Array(old), links: links) { left in
            state.withLockedValue { $0.deployment?.remaining = left }
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
        let forced = state.withLockedValue { state in
            let forced = old.reduce(0) { $0 + state.load[$1] }
            state.retired.formUnion(old)
            state.deployment?.phase = .stopping
            state.deployment?.remaining = forced
            state.deployment?.forced = forced
            return forced
        }
        if forced > 0 {
            logger.warning(
                "deploy: connections not released within stop_timeout resume on the new instances",
                metadata: ["connections": .stringConvertible(forced)]
            )
        }
        logger.info("deploy stopping old instances")
        let oldLinks = state.withLockedValue { state in state.links.values.filter { old.contains($0.instance) } }
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
        state.withLockedValue { state in
            state.retired.formUnion(new)
            state.deployment?.phase = .failed
            state.deployment?.error = reason
            state.deployment?.finishedAt = Self.wallClockMillis()
        }
        logger.error("deploy failed; the running instances serve on", metadata: ["error": .string(reason)])
        let links = state.withLockedValue { state in state.links.values.filter { new.contains($0.instance) } }
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

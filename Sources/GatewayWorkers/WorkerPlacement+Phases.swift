import GatewayCore
import NIOCore

/// Hibernation and rolling deploys, as events of the placement: the pool's driver does the
/// waiting (for links, for releases) and tells the placement what happened.
extension WorkerPlacement {
    // MARK: Hibernation

    /// Awake instances in force that are not going to sleep, and how many of them may (the
    /// minimum keeps running).
    var sleepCandidates: (instances: [Int], spare: Int) {
        let pool = pool
        let awake = pool.current.filter { pool.awake[$0] && !pool.sleeping.contains($0) }
        return (awake, awake.count - rules.alwaysRunning)
    }

    /// An instance starts going to sleep: no connection is given to it from now on. Returns
    /// its links (whose connections are to leave) and how many connections it holds.
    mutating func sleepBegins(_ instance: Int) -> (links: [UInt64], connections: Int) {
        change { pool in
            pool.sleeping.insert(instance)
            return (pool.linkIDs(of: instance..<instance + 1), pool.load[instance])
        }
    }

    /// The instance is down; returns one to wake when connections wait meanwhile.
    mutating func asleep(_ instance: Int, now: NIODeadline) -> Int? {
        change { pool in
            pool.awake[instance] = false
            pool.sleeping.remove(instance)
            return pool.waiting.isEmpty ? nil : Self.instanceToWake(&pool, now: now)
        }
    }

    // MARK: Rolling deploys

    /// What a deploy starts from: the generation in force, how many instances the new one has
    /// and how many of them run at once, and what they run.
    struct DeployPlan: Equatable {
        var from: Range<Int>
        var count: Int
        var awake: Int
        var command: WorkerProgram
    }

    /// A deploy asked for (`command` nil: the running program again). Refused while the pool
    /// is stopping or replaced, while another deploy is in progress, and for a worker run
    /// elsewhere; otherwise the deploy is in force at once (a second one is refused from here).
    mutating func beginDeploy(
        _ command: WorkerProgram?,
        route: String,
        names: (Int) -> String,
        wallClockMillis: Int64
    ) -> Result<DeployPlan, RouteAdministrationError> {
        if isStopped {
            return .failure(RouteAdministrationError(.conflict, "the route's pool is being replaced or stopped"))
        }
        let alwaysRunning = rules.alwaysRunning
        return change { pool in
            guard !pool.retiring else {
                return .failure(RouteAdministrationError(.conflict, "the route's pool is being replaced or stopped"))
            }
            if let deployment = pool.deployment, deployment.inProgress {
                return .failure(
                    RouteAdministrationError(
                        .conflict,
                        "deploy \(deployment.number) of route \(route) is still \(deployment.phase.rawValue)"
                    )
                )
            }
            guard case .supervised(let running, let arguments, let environment, let count) = pool.source else {
                return .failure(
                    RouteAdministrationError(
                        .conflict,
                        "route \(route) uses an external worker (worker.socket): deploy it where it runs"
                    )
                )
            }
            let awake = pool.current.filter { pool.awake[$0] }.count
            let command = command ?? WorkerProgram(command: running, arguments: arguments, environment: environment)
            pool.deployment = WorkerRouteStatus.Deployment(
                number: (pool.deployment?.number ?? 0) + 1,
                phase: .starting,
                command: command.command,
                arguments: command.arguments,
                from: pool.current.map(names),
                to: [],
                startedAt: wallClockMillis
            )
            return .success(
                DeployPlan(from: pool.current, count: count, awake: max(awake, alwaysRunning), command: command)
            )
        }
    }

    /// The new generation exists (its instances start).
    mutating func deployStarting(_ generation: [String]) {
        change { $0.deployment?.to = generation }
    }

    /// Whether every instance of `generation` that should run has a link.
    func isLinked(_ generation: Range<Int>) -> Bool {
        let pool = pool
        return generation.allSatisfy { !pool.awake[$0] || pool.linkCount(of: $0) > 0 }
    }

    /// The new generation takes new connections; the old one's are to leave it. Returns the
    /// old generation's links, the waiting connections (to attach now) and how many move.
    mutating func moveInForce(
        from old: Range<Int>,
        to new: Range<Int>,
        command: WorkerProgram
    ) -> (links: [UInt64], waiting: [UInt64], moving: Int) {
        change { pool in
            pool.current = new
            pool.source = .supervised(
                command: command.command,
                arguments: command.arguments,
                environment: command.environment,
                instances: new.count
            )
            let moving = pool.load(of: old)
            pool.deployment?.phase = .moving
            pool.deployment?.moving = moving
            pool.deployment?.remaining = moving
            return (pool.linkIDs(of: old), pool.waitingInOrder, moving)
        }
    }

    /// Connections left on the old generation while they move.
    mutating func remaining(_ left: Int) {
        change { $0.deployment?.remaining = left }
    }

    /// The old generation is retired (its links close, its processes stop); returns how many
    /// connections it still held, which resume on the new one as after a death.
    mutating func retireGeneration(_ old: Range<Int>) -> Int {
        change { pool in
            let forced = pool.load(of: old)
            pool.retired.formUnion(old)
            pool.deployment?.phase = .stopping
            pool.deployment?.remaining = forced
            pool.deployment?.forced = forced
            return forced
        }
    }

    mutating func deployDone(wallClockMillis: Int64) -> WorkerRouteStatus.Deployment? {
        change { pool in
            pool.deployment?.phase = .done
            pool.deployment?.remaining = 0
            pool.deployment?.finishedAt = wallClockMillis
            return pool.deployment
        }
    }

    /// The new generation did not come up: it is retired, the old one serves on. Returns its
    /// links, to close.
    mutating func abandonDeploy(_ new: Range<Int>, reason: String, wallClockMillis: Int64) -> [UInt64] {
        change { pool in
            pool.retired.formUnion(new)
            pool.deployment?.phase = .failed
            pool.deployment?.error = reason
            pool.deployment?.finishedAt = wallClockMillis
            return pool.linkIDs(of: new)
        }
    }
}

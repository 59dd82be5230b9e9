import GatewayCore
import GatewayMetrics
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Supervision, as the pool's `Service`: every instance in force runs (supervised ones as
/// processes) and is linked — one link per event loop, reconnecting with backoff — until the
/// gateway stops or a retired pool's last connection closes.
extension WorkerPool {
    /// Adds `count` supervised instances running `command`, the first `awake` of them wanted.
    func makeGeneration(_ command: WorkerProgram, count: Int, awake: Int) -> Range<Int> {
        state.withLockedValue { state in
            let made = state.placement.addGeneration(count: count, awake: awake, now: .now())
            for index in made {
                let name = "\(route.name)-\(index)"
                let path = "\(socketDirectory ?? "")/\(name).sock"
                let wanted = index - made.lowerBound < awake
                state.instances.append(
                    WorkerInstance(
                        name: name,
                        socketPath: path,
                        process: WorkerProcess(
                            name: name,
                            command: command.command,
                            arguments: command.arguments,
                            environment: command.environment,
                            socketPath: path,
                            stopTimeout: settings.stopTimeout,
                            group: group,
                            logger: logger,
                            metrics: metrics,
                            wanted: wanted
                        )
                    )
                )
            }
            return made
        }
    }

    /// The instance at `index` (of any generation).
    func instance(_ index: Int) -> WorkerInstance {
        state.withLockedValue { $0.instances[index] }
    }

    /// The processes of supervised instances running now, by instance name (admin API, tests).
    public var runningProcesses: [(instance: String, pid: Int32)] {
        state.withLockedValue { $0.instances }.compactMap { instance in
            instance.process?.pid.map { (instance.name, $0) }
        }
    }

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            let loops = Array(self.group.makeIterator())
            if settings.hibernates {
                group.addTask { await self.watchIdleInstances() }
            }
            group.addTask {
                // Until the gateway stops, or a reload retires the pool and its last
                // connection has closed.
                await withTaskGroup(of: Void.self) { waiters in
                    waiters.addTask { try? await gracefulShutdown() }
                    waiters.addTask { for await _ in self.stopSignal.stream { return } }
                    await waiters.next()
                    waiters.cancelAll()
                }
                await self.shutDown()
            }
            // Until `shutDown` ends the stream.
            for await job in jobs.stream {
                switch job {
                case .instance(let index):
                    if let process = instance(index).process {
                        group.addTask { await process.run() }
                    }
                    // A link per event loop: every connection finds its instance's link on its
                    // own loop, and the worker's replies to it need no thread hop.
                    for loop in loops {
                        group.addTask { await self.keepLinked(index, on: loop) }
                    }
                case .deploy(let old, let new, let command):
                    group.addTask { await self.carryOut(from: old, to: new, command: command) }
                }
            }
        }
    }

    /// Takes the pool out of service: a reload has replaced or removed its route. New
    /// connections no longer come here; the pool keeps serving the ones it has and stops its
    /// instances once the last of them has closed (at once when it has none).
    public func retire() {
        let idle = state.withLockedValue { $0.placement.retire() }
        logger.info("worker pool retired", metadata: ["connections": .stringConvertible(statistics.connections)])
        if idle { stopSignal.continuation.yield() }
    }

    func shutDown() async {
        logger.debug("worker pool stopping")
        let (links, instances) = state.withLockedValue { state in
            (state.links(state.placement.stop()), state.instances)
        }
        jobs.continuation.finish()
        linked.end()
        changed.end()
        // Tell the workers: their links close (each worker sees every connection end).
        for link in links { try? await link.channel.close() }
        logger.debug("worker links closed", metadata: ["links": .stringConvertible(links.count)])
        for instance in instances { await instance.process?.stop() }
        if let madeDirectory {
            for instance in instances { unlink(instance.socketPath) }
            rmdir(madeDirectory)
        }
        logger.debug("worker pool stopped")
    }

    var shuttingDown: Bool { state.withLockedValue { $0.placement.isStopped } }

    /// Whether `keepLinked` of this instance should stop: the pool stops, or a deploy retired it.
    func linkNotWanted(_ index: Int) -> Bool {
        state.withLockedValue { $0.placement.isStopped || $0.placement.pool.retired.contains(index) }
    }

    /// Connects to an instance from `loop`, again and again while the pool runs. The backoff
    /// restarts only after a link that worked: one that a worker keeps breaking (or that never
    /// says hello) is retried less and less often, up to the backoff's ceiling.
    func keepLinked(_ index: Int, on loop: any EventLoop) async {
        let instance = instance(index)
        var backoff = Backoff()
        while !linkNotWanted(index) {
            if let process = instance.process, !process.isWanted {
                // Asleep: no link to try until it is woken (then at once, not after a backoff).
                await process.untilWanted()
                backoff.reset()
                if linkNotWanted(index) { return }
            }
            do {
                let outcome = try await connect(index, on: loop)
                if try await outcome.get() == .ended { backoff.reset() }
            } catch {
                logger.debug(
                    "worker not reachable",
                    metadata: ["instance": .string(instance.name), "error": .string("\(error)")]
                )
            }
            if linkNotWanted(index) { return }
            try? await Task.sleep(nanoseconds: UInt64(backoff.next().nanoseconds))
        }
    }

    /// Opens a link; its future says how the link ended.
    func connect(
        _ index: Int,
        on loop: any EventLoop
    ) async throws -> EventLoopFuture<WorkerLinkHandler.Outcome> {
        let instance = instance(index)
        let linkID = nextLinkID.next()
        let maxFrameBytes = self.maxFrameBytes
        let logger = self.logger
        // The pipeline stays empty until the peer is trusted; then the link handler is all of it.
        let channel = try await ClientBootstrap(group: loop)
            .connectTimeout(.seconds(2))
            .connect(unixDomainSocketPath: instance.socketPath).get()
        // Trust the socket only if its owner is an allowed user.
        let uid = try await PeerCredentials.uid(of: channel).get()
        let allowed =
            settings.allowedUIDs.isEmpty ? [PeerCredentials.ownUID] : settings.allowedUIDs.map { UInt32($0) }
        guard allowed.contains(uid) else {
            logger.error(
                "worker socket owned by a user that is not allowed",
                metadata: ["instance": .string(instance.name), "uid": .stringConvertible(uid)]
            )
            try? await channel.close()
            throw ChannelError.operationUnsupported
        }
        let outcome = channel.eventLoop.makePromise(of: WorkerLinkHandler.Outcome.self)
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(
                WorkerLinkHandler(
                    instance: index,
                    instanceName: instance.name,
                    linkID: linkID,
                    maxFrameBytes: maxFrameBytes,
                    helloTimeout: .seconds(5),
                    pool: self,
                    logger: logger,
                    outcome: outcome
                )
            )
            channel.pipeline.fireChannelActive()
        }.get()
        return outcome.futureResult
    }
}

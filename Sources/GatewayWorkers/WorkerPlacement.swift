import GatewayCore
import NIOCore

/// Where a worker route's connections go, as a value: the generations of instances (by index;
/// a deploy appends one), which are in force, awake, going to sleep or retired, the links to
/// them, how many connections each instance holds, which link each connection is pinned to,
/// which wait for one, and the deploy in progress.
///
/// It holds ids, not objects, and reads no clock (events carry the time): `WorkerPool` drives
/// it under one lock and turns its answers into work on links, connections and processes, and
/// its tests move time themselves.
struct WorkerPlacement {
    /// What placement knows of a link: its instance and the event loop it lives on.
    struct Link: Equatable {
        var id: UInt64
        var instance: Int
        var loop: ObjectIdentifier
    }

    /// What hibernation needs to know, from the route's settings.
    struct Rules: Equatable {
        /// Instances beyond `min_instances` sleep when idle and wake on demand.
        var hibernates = false
        /// `min_instances`: awake whatever happens.
        var alwaysRunning = 1
    }

    /// Counters of events the pool saw, for its statistics.
    struct Counters: Equatable {
        var lostMessages = 0
        var linkErrors = 0
        var sendQueueOverflows = 0
    }

    /// The bookkeeping of a pool, serving or stopped.
    struct Pool {
        /// Instances the pool has had, by index: 0..<instanceCount (an index is never reused).
        var instanceCount = 0
        /// The generation in force: only these take connections.
        var current: Range<Int> = 0..<0
        /// What the generation in force runs.
        var source: WorkerSettings.Source
        /// Instances of earlier generations (or an abandoned deploy's), stopped for good.
        var retired: Set<Int> = []
        /// The last deploy, and how many there were.
        var deployment: WorkerRouteStatus.Deployment?
        var links: [UInt64: Link] = [:]
        /// Per instance: the connections pinned to it.
        var load: [Int] = []
        var connections: Set<UInt64> = []
        /// Connection → the link it is pinned to (kept whole: a link may be gone before the
        /// connection hears it, and its instance's load is still to be given back).
        var assignment: [UInt64: Link] = [:]
        /// Connections waiting for an instance, with the order they came in.
        var waiting: [UInt64: UInt64] = [:]
        var arrivals: UInt64 = 0
        /// Per instance: wanted now (a hibernating route runs only some), and since when.
        var awake: [Bool] = []
        var awakeSince: [NIODeadline] = []
        /// Instances being put to sleep: their connections are leaving, none is given to them.
        var sleeping: Set<Int> = []
        /// Replaced by a reload: stops once its last connection is gone.
        var retiring = false
        var counters = Counters()

        func linkCount(of instance: Int) -> Int {
            links.values.reduce(0) { $0 + ($1.instance == instance ? 1 : 0) }
        }

        func load<Instances: Sequence<Int>>(of instances: Instances) -> Int {
            instances.reduce(0) { $0 + load[$1] }
        }

        func linkIDs(of instances: Range<Int>) -> [UInt64] {
            links.values.filter { instances.contains($0.instance) }.map(\.id).sorted()
        }

        /// The waiting connections, first come first.
        var waitingInOrder: [UInt64] { waiting.sorted { $0.value < $1.value }.map(\.key) }
    }

    enum State {
        case serving(Pool)
        /// The gateway stops (or a retired pool's last connection closed): links close,
        /// processes stop; connections still leaving are accounted for.
        case stopped(Pool)
        /// Only while an event changes the pool, so that it is not copied.
        case modifying
    }

    private(set) var state: State
    let rules: Rules

    init(source: WorkerSettings.Source, rules: Rules) {
        self.rules = rules
        state = .serving(Pool(source: source))
    }

    var pool: Pool {
        switch state {
        case .serving(let pool), .stopped(let pool): return pool
        case .modifying: preconditionFailure("placement read while it changes")
        }
    }

    var isStopped: Bool {
        if case .stopped = state { true } else { false }
    }

    mutating func change<Result>(_ body: (inout Pool) -> Result) -> Result {
        switch state {
        case .serving(var pool):
            state = .modifying
            defer { state = .serving(pool) }
            return body(&pool)
        case .stopped(var pool):
            state = .modifying
            defer { state = .stopped(pool) }
            return body(&pool)
        case .modifying:
            preconditionFailure("placement changed while it changes")
        }
    }

    // MARK: Generations

    /// Adds `count` instances, the first `awake` of them wanted; returns their indices.
    mutating func addGeneration(count: Int, awake: Int, now: NIODeadline) -> Range<Int> {
        change { pool in
            let first = pool.instanceCount
            pool.instanceCount += count
            for index in first..<first + count {
                pool.load.append(0)
                pool.awake.append(index - first < awake)
                pool.awakeSince.append(now)
            }
            return first..<first + count
        }
    }

    /// Puts a generation in force (at start, and when a deploy moves to it).
    mutating func putInForce(_ generation: Range<Int>, source: WorkerSettings.Source) {
        change { pool in
            pool.current = generation
            pool.source = source
        }
    }

    // MARK: Connections

    mutating func opened(_ connection: UInt64) {
        change { pool in _ = pool.connections.insert(connection) }
    }

    /// Where a connection goes.
    enum AttachAction: Equatable {
        /// Pinned to this link: open it there.
        case link(UInt64)
        /// No instance takes it now and nothing needs one: it stays unattached (hibernated).
        case asleep
        /// It waits for an instance; `wake`: this one was woken for it.
        case waiting(wake: Int?)
        /// Pinned already (two links of a new instance became ready at once, and each offered
        /// it the waiting connections): nothing to do.
        case pinned
        case gone
    }

    /// Pins a connection to the live instance with the fewest connections, on its link on the
    /// connection's own loop (any of its links when it has none there), or lets it wait. On a
    /// hibernating route, a connection that needs no worker now (`wake` false) stays without
    /// one, and one that does wakes an instance when none is awake.
    mutating func attach(_ connection: UInt64, loop: ObjectIdentifier, wake: Bool, now: NIODeadline) -> AttachAction {
        let hibernates = rules.hibernates
        return change { pool in
            guard pool.connections.contains(connection) else { return .gone }
            if pool.assignment[connection] != nil {
                pool.waiting[connection] = nil
                return .pinned
            }
            var best: (rank: (Int, Int), link: Link)?
            for link in pool.links.values
            where pool.current.contains(link.instance) && !pool.sleeping.contains(link.instance) {
                let rank = (pool.load[link.instance], link.loop == loop ? 0 : 1)
                if best == nil || rank < best!.rank || (rank == best!.rank && link.id < best!.link.id) {
                    best = (rank, link)
                }
            }
            guard let best else {
                if hibernates && !wake {
                    pool.waiting[connection] = nil
                    return .asleep
                }
                if pool.waiting[connection] == nil {
                    pool.arrivals += 1
                    pool.waiting[connection] = pool.arrivals
                }
                return .waiting(wake: hibernates ? Self.instanceToWake(&pool, now: now) : nil)
            }
            pool.waiting[connection] = nil
            pool.assignment[connection] = best.link
            pool.load[best.link.instance] += 1
            return .link(best.link.id)
        }
    }

    /// The instance to wake for a connection that needs one, marked awake; nil when one is
    /// awake already (starting, restarting or linked: the connection waits for its link) or
    /// every instance is awake (one being put to sleep wakes again once it is down).
    static func instanceToWake(_ pool: inout Pool, now: NIODeadline) -> Int? {
        if pool.current.contains(where: { pool.awake[$0] && !pool.sleeping.contains($0) }) { return nil }
        guard let index = pool.current.first(where: { !pool.awake[$0] }) else { return nil }
        pool.awake[index] = true
        pool.awakeSince[index] = now
        return index
    }

    /// A connection is no longer on `link` (its instance let it go, or the link was gone
    /// before its open reached it).
    mutating func unpinned(_ connection: UInt64, from link: UInt64) {
        change { pool in
            guard let pinned = pool.assignment[connection], pinned.id == link else { return }
            pool.assignment[connection] = nil
            pool.load[pinned.instance] -= 1
        }
    }

    /// A connection closed; true when it was the last of a retired pool (which then stops).
    mutating func detach(_ connection: UInt64) -> Bool {
        change { pool in
            guard pool.connections.remove(connection) != nil else { return false }
            pool.waiting[connection] = nil
            if let link = pool.assignment.removeValue(forKey: connection) { pool.load[link.instance] -= 1 }
            return pool.retiring && pool.connections.isEmpty
        }
    }

    // MARK: Links

    enum LinkReadyAction: Equatable {
        /// The instance was retired while it linked: close the link.
        case close
        /// In service; the waiting connections are offered to it, first come first.
        case linked(firstOfInstance: Bool, waiting: [UInt64])
    }

    mutating func linkReady(_ link: Link) -> LinkReadyAction {
        change { pool in
            if pool.retired.contains(link.instance) { return .close }
            let first = pool.linkCount(of: link.instance) == 0
            pool.links[link.id] = link
            return .linked(firstOfInstance: first, waiting: pool.waitingInOrder)
        }
    }

    struct LinkLost: Equatable {
        var lastOfInstance: Bool
        /// Its instance was retired or put to sleep: losing it is no surprise.
        var expected: Bool
    }

    /// A link is gone with `orphans` (the connections open on it): they are unpinned and will
    /// wait for another. A link that was never ready (its instance retired meanwhile) changes
    /// nothing.
    mutating func linkLost(_ link: Link, orphans: [UInt64]) -> LinkLost {
        change { pool in
            let known = pool.links.removeValue(forKey: link.id) != nil
            for connection in orphans where pool.assignment[connection]?.id == link.id {
                pool.assignment[connection] = nil
                pool.load[link.instance] -= 1
            }
            return LinkLost(
                lastOfInstance: known && pool.linkCount(of: link.instance) == 0,
                expected: pool.retired.contains(link.instance) || pool.sleeping.contains(link.instance)
            )
        }
    }

    // MARK: The pool's life

    /// A reload replaced the route: true when no connection is left (the pool stops now).
    mutating func retire() -> Bool {
        change { pool in
            pool.retiring = true
            return pool.connections.isEmpty
        }
    }

    /// The pool stops; returns the links to close.
    mutating func stop() -> [UInt64] {
        guard case .serving(let pool) = state else { return [] }
        state = .stopped(pool)
        return pool.links.keys.sorted()
    }

    mutating func count(_ change: (inout Counters) -> Void) {
        self.change { change(&$0.counters) }
    }
}

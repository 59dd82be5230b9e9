import GatewayCore
import NIOCore
import XCTest

@testable import GatewayWorkers

/// Placement without processes, sockets or a clock: links are ids, loops are identities, and
/// the test says what time it is.
final class WorkerPlacementTests: XCTestCase {
    private final class Loop {}
    /// Kept alive: an identity is only unique while its object lives.
    private let loops = (Loop(), Loop())
    private var loopA: ObjectIdentifier { ObjectIdentifier(loops.0) }
    private var loopB: ObjectIdentifier { ObjectIdentifier(loops.1) }
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    private let program = WorkerProgram(command: "/bin/worker", arguments: ["--v1"])

    private func supervised(_ count: Int) -> WorkerSettings.Source {
        .supervised(command: program.command, arguments: program.arguments, environment: [], instances: count)
    }

    /// A pool of `count` instances in force, `awake` of them wanted.
    private func placement(
        count: Int,
        awake: Int,
        rules: WorkerPlacement.Rules = .init()
    ) -> WorkerPlacement {
        var placement = WorkerPlacement(source: supervised(count), rules: rules)
        placement.putInForce(placement.addGeneration(count: count, awake: awake, now: start), source: supervised(count))
        return placement
    }

    private func link(_ id: UInt64, _ instance: Int, _ loop: ObjectIdentifier) -> WorkerPlacement.Link {
        .init(id: id, instance: instance, loop: loop)
    }

    private func ready(_ placement: inout WorkerPlacement, _ links: WorkerPlacement.Link...) {
        for link in links { _ = placement.linkReady(link) }
    }

    func testTheLeastLoadedInstanceOnTheConnectionsOwnLoop() {
        var placement = placement(count: 2, awake: 2)
        ready(&placement, link(1, 0, loopA), link(2, 0, loopB), link(3, 1, loopA), link(4, 1, loopB))
        for id: UInt64 in 10...13 { placement.opened(id) }
        XCTAssertEqual(placement.attach(10, loop: loopA, wake: true, now: start), .link(1), "a tie: the lower id")
        XCTAssertEqual(placement.attach(11, loop: loopB, wake: true, now: start), .link(4), "the idle instance, on B")
        XCTAssertEqual(placement.attach(12, loop: loopB, wake: true, now: start), .link(2), "1 each: its own loop")
        XCTAssertEqual(placement.attach(13, loop: loopA, wake: true, now: start), .link(3))
        XCTAssertEqual(placement.pool.load, [2, 2])
        XCTAssertEqual(placement.attach(13, loop: loopA, wake: true, now: start), .pinned)
        XCTAssertEqual(placement.attach(99, loop: loopA, wake: true, now: start), .gone, "never opened")
        XCTAssertFalse(placement.detach(10))
        XCTAssertEqual(placement.pool.load, [1, 2])
        placement.unpinned(12, from: 2)
        placement.unpinned(12, from: 2)
        XCTAssertEqual(placement.pool.load, [0, 2], "given back once")
    }

    func testWaitingConnectionsAreOfferedToTheFirstLinkFirstComeFirst() {
        var placement = placement(count: 1, awake: 1)
        for id: UInt64 in [7, 3, 5] {
            placement.opened(id)
            XCTAssertEqual(placement.attach(id, loop: loopA, wake: true, now: start), .waiting(wake: nil))
        }
        XCTAssertEqual(placement.linkReady(link(1, 0, loopA)), .linked(firstOfInstance: true, waiting: [7, 3, 5]))
        XCTAssertEqual(placement.linkReady(link(2, 0, loopB)), .linked(firstOfInstance: false, waiting: [7, 3, 5]))
        XCTAssertEqual(placement.attach(7, loop: loopB, wake: true, now: start), .link(2))
        XCTAssertEqual(placement.pool.waitingInOrder, [3, 5])
    }

    func testALostLinksConnectionsWaitAndALinkGoneBeforeTheOpenGivesItsLoadBack() {
        var placement = placement(count: 1, awake: 1)
        ready(&placement, link(1, 0, loopA), link(2, 0, loopB))
        placement.opened(10)
        placement.opened(11)
        XCTAssertEqual(placement.attach(10, loop: loopA, wake: true, now: start), .link(1))
        XCTAssertEqual(placement.attach(11, loop: loopA, wake: true, now: start), .link(1))
        // 10 was open on the link; 11's open had not reached it when it went.
        XCTAssertEqual(
            placement.linkLost(link(1, 0, loopA), orphans: [10]),
            .init(lastOfInstance: false, expected: false)
        )
        XCTAssertEqual(placement.pool.load, [1])
        placement.unpinned(11, from: 1)
        XCTAssertEqual(placement.pool.load, [0])
        XCTAssertEqual(placement.linkLost(link(2, 0, loopB), orphans: []), .init(lastOfInstance: true, expected: false))
        XCTAssertEqual(placement.attach(10, loop: loopA, wake: true, now: start), .waiting(wake: nil))
    }

    func testHibernationWakesOneInstanceForWhoNeedsOneAndSleepsTheIdle() {
        let rules = WorkerPlacement.Rules(hibernates: true, alwaysRunning: 0)
        var placement = placement(count: 2, awake: 0, rules: rules)
        let later = start + .seconds(30)
        placement.opened(10)
        placement.opened(11)
        XCTAssertEqual(placement.attach(10, loop: loopA, wake: false, now: later), .asleep, "needs no worker now")
        XCTAssertEqual(placement.attach(10, loop: loopA, wake: true, now: later), .waiting(wake: 0))
        XCTAssertEqual(placement.pool.awakeSince[0], later)
        XCTAssertEqual(placement.attach(11, loop: loopA, wake: true, now: later), .waiting(wake: nil), "0 is waking")
        XCTAssertEqual(placement.linkReady(link(1, 0, loopA)), .linked(firstOfInstance: true, waiting: [10, 11]))
        XCTAssertEqual(placement.attach(10, loop: loopA, wake: true, now: later), .link(1))
        XCTAssertEqual(placement.sleepCandidates.instances, [0])
        XCTAssertEqual(placement.sleepCandidates.spare, 1)
        // Instance 0 goes to sleep: its connections leave, and none is given to it.
        let sleep = placement.sleepBegins(0)
        XCTAssertEqual(sleep.links, [1])
        XCTAssertEqual(sleep.connections, 1)
        XCTAssertEqual(placement.sleepCandidates.instances, [], "nothing else may sleep")
        XCTAssertEqual(placement.attach(11, loop: loopA, wake: true, now: later), .waiting(wake: 1))
        placement.unpinned(10, from: 1)
        XCTAssertEqual(placement.linkLost(link(1, 0, loopA), orphans: []).expected, true)
        XCTAssertNil(placement.asleep(0, now: later), "1 is awake for the one waiting")
        XCTAssertEqual(placement.pool.awake, [false, true])
        // Asleep with connections waiting and none awake: one wakes.
        var alone = self.placement(count: 1, awake: 1, rules: rules)
        alone.opened(20)
        _ = alone.sleepBegins(0)
        XCTAssertEqual(alone.attach(20, loop: loopA, wake: true, now: later), .waiting(wake: nil), "it wakes when down")
        XCTAssertEqual(alone.asleep(0, now: later + .seconds(1)), 0)
        XCTAssertEqual(alone.pool.awakeSince[0], later + .seconds(1))
    }

    func testEveryPhaseOfARollingDeploy() throws {
        var placement = placement(count: 2, awake: 2)
        ready(&placement, link(1, 0, loopA), link(2, 1, loopA))
        for id: UInt64 in 10...12 {
            placement.opened(id)
            _ = placement.attach(id, loop: loopA, wake: true, now: start)
        }
        let next = WorkerProgram(command: "/bin/worker", arguments: ["--v2"])
        let plan = try placement.beginDeploy(next, route: "chat", names: { "chat-\($0)" }, wallClockMillis: 100).get()
        XCTAssertEqual(plan, .init(from: 0..<2, count: 2, awake: 2, command: next))
        XCTAssertEqual(placement.pool.deployment?.phase, .starting)
        XCTAssertEqual(placement.pool.deployment?.from, ["chat-0", "chat-1"])
        XCTAssertThrowsError(
            try placement.beginDeploy(nil, route: "chat", names: { "\($0)" }, wallClockMillis: 101).get(),
            "one deploy at a time"
        )
        let fresh = placement.addGeneration(count: plan.count, awake: plan.awake, now: start)
        XCTAssertEqual(fresh, 2..<4)
        placement.deployStarting(["chat-2", "chat-3"])
        XCTAssertFalse(placement.isLinked(fresh))
        ready(&placement, link(3, 2, loopA))
        XCTAssertFalse(placement.isLinked(fresh), "every wanted instance links")
        ready(&placement, link(4, 3, loopA))
        XCTAssertTrue(placement.isLinked(fresh))
        // New connections go to the new generation only once it is in force.
        placement.opened(13)
        XCTAssertEqual(placement.attach(13, loop: loopA, wake: true, now: start), .link(2))
        let moved = placement.moveInForce(from: plan.from, to: fresh, command: next)
        XCTAssertEqual(moved.links, [1, 2])
        XCTAssertEqual(moved.moving, 4)
        XCTAssertEqual(placement.pool.deployment?.phase, .moving)
        placement.opened(14)
        XCTAssertEqual(placement.attach(14, loop: loopA, wake: true, now: start), .link(3))
        // Three are released and reopen on the new generation; one is not.
        for id: UInt64 in [10, 11, 12] {
            let from: UInt64 = id == 11 ? 2 : 1
            placement.unpinned(id, from: from)
            _ = placement.attach(id, loop: loopA, wake: true, now: start)
        }
        placement.remaining(placement.pool.load(of: plan.from))
        XCTAssertEqual(placement.pool.deployment?.remaining, 1)
        XCTAssertEqual(placement.retireGeneration(plan.from), 1, "13 was not released: forced")
        XCTAssertEqual(placement.pool.deployment?.phase, .stopping)
        XCTAssertEqual(placement.linkReady(link(5, 0, loopB)), .close, "a retired instance's late link")
        let done = placement.deployDone(wallClockMillis: 250)
        XCTAssertEqual(done?.phase, .done)
        XCTAssertEqual(done?.finishedAt, 250)
        XCTAssertEqual(placement.pool.current, fresh)
        guard case .supervised(_, let arguments, _, _) = placement.pool.source else { return XCTFail("source") }
        XCTAssertEqual(arguments, ["--v2"])
        XCTAssertNoThrow(try placement.beginDeploy(nil, route: "chat", names: { "\($0)" }, wallClockMillis: 300).get())
    }

    func testADeployThatCannotLinkIsAbandonedAndTheOldGenerationServesOn() throws {
        var placement = placement(count: 1, awake: 1)
        ready(&placement, link(1, 0, loopA))
        let plan = try placement.beginDeploy(nil, route: "chat", names: { "chat-\($0)" }, wallClockMillis: 1).get()
        XCTAssertEqual(plan.command, program, "the running program again")
        let fresh = placement.addGeneration(count: plan.count, awake: plan.awake, now: start)
        ready(&placement, link(2, fresh.lowerBound, loopA))
        let links = placement.abandonDeploy(fresh, reason: "did not link", wallClockMillis: 9)
        XCTAssertEqual(links, [2])
        XCTAssertEqual(placement.pool.deployment?.phase, .failed)
        XCTAssertEqual(placement.pool.deployment?.error, "did not link")
        XCTAssertEqual(placement.pool.current, 0..<1)
        XCTAssertEqual(placement.linkLost(link(2, fresh.lowerBound, loopA), orphans: []).expected, true)
        placement.opened(10)
        XCTAssertEqual(placement.attach(10, loop: loopA, wake: true, now: start), .link(1))
    }

    func testDeploysAreRefusedWhereTheyCannotRun() {
        var external = WorkerPlacement(source: .external(socket: "/run/w.sock"), rules: .init())
        external.putInForce(
            external.addGeneration(count: 1, awake: 1, now: start),
            source: .external(socket: "/run/w.sock")
        )
        XCTAssertThrowsError(try external.beginDeploy(nil, route: "r", names: { "\($0)" }, wallClockMillis: 0).get())
        var retiring = placement(count: 1, awake: 1)
        XCTAssertTrue(retiring.retire(), "no connection: it stops at once")
        XCTAssertThrowsError(try retiring.beginDeploy(nil, route: "r", names: { "\($0)" }, wallClockMillis: 0).get())
        var stopped = placement(count: 1, awake: 1)
        ready(&stopped, link(1, 0, loopA), link(2, 0, loopB))
        XCTAssertEqual(stopped.stop(), [1, 2])
        XCTAssertTrue(stopped.isStopped)
        XCTAssertEqual(stopped.stop(), [], "once")
        XCTAssertThrowsError(try stopped.beginDeploy(nil, route: "r", names: { "\($0)" }, wallClockMillis: 0).get())
    }

    func testARetiredPoolStopsWithItsLastConnection() {
        var placement = placement(count: 1, awake: 1)
        placement.opened(10)
        placement.opened(11)
        XCTAssertFalse(placement.retire())
        XCTAssertFalse(placement.detach(10))
        XCTAssertFalse(placement.detach(10), "once")
        XCTAssertTrue(placement.detach(11))
    }
}

import NIOConcurrencyHelpers
import NIOCore

/// A one-way switch: closed until `open()`, open for good after. A wait that starts before it
/// opens ends when it does, one that starts after ends at once — so a waiter that asks just as
/// it opens is never missed, and nobody polls a flag (a worker pool's first link, a process's
/// exit, a route's retirement, the gateway serving).
///
/// A wait that gives up (its time passed, its task was cancelled) takes itself off the list:
/// a latch waited on every few seconds for days holds nothing for the waits that ended.
public final class Latch: Sendable {
    private enum State {
        case closed(Waiters)
        case open
        /// What it stood for can no longer happen (its pool stopped first): waiters fail.
        case ended
    }

    private let state: NIOLockedValueBox<State>

    public init(open: Bool = false) {
        state = NIOLockedValueBox(open ? .open : .closed(Waiters()))
    }

    public var isOpen: Bool {
        state.withLockedValue { if case .open = $0 { true } else { false } }
    }

    public func open() {
        let waiting = state.withLockedValue { state -> Waiters in
            guard case .closed(let waiting) = state else { return Waiters() }
            state = .open
            return waiting
        }
        waiting.complete(true)
    }

    /// Ends every wait, now and later, with false, unless the latch opened first.
    public func end() {
        let waiting = state.withLockedValue { state -> Waiters in
            guard case .closed(let waiting) = state else { return Waiters() }
            state = .ended
            return waiting
        }
        waiting.complete(false)
    }

    /// Whether the latch opens within `timeout` (nil: however long it takes); false when it
    /// ended, when the time passed or when the waiting task was cancelled.
    public func opens(within timeout: TimeAmount?, on eventLoop: any EventLoop) async -> Bool {
        let promise = eventLoop.makePromise(of: Bool.self)
        if let now = add(promise) {
            promise.succeed(now)
            return now
        }
        return await Waiters.wait(for: promise, within: timeout) { self.giveUp(promise) }
    }

    /// Adds a waiter; its answer when the latch is not closed.
    private func add(_ promise: EventLoopPromise<Bool>) -> Bool? {
        state.withLockedValue { state -> Bool? in
            switch state {
            case .open: return true
            case .ended: return false
            case .closed(var waiting):
                waiting.add(promise)
                state = .closed(waiting)
                return nil
            }
        }
    }

    private func giveUp(_ promise: EventLoopPromise<Bool>) {
        state.withLockedValue { state in
            guard case .closed(var waiting) = state else { return }
            waiting.remove(promise)
            state = .closed(waiting)
        }
        promise.succeed(false)
    }
}

/// Promises waiting for an answer, removable one by one.
struct Waiters {
    private var promises: [EventLoopPromise<Bool>] = []

    mutating func add(_ promise: EventLoopPromise<Bool>) { promises.append(promise) }

    mutating func remove(_ promise: EventLoopPromise<Bool>) {
        if let index = promises.firstIndex(where: { $0.futureResult === promise.futureResult }) {
            promises.remove(at: index)
        }
    }

    var isEmpty: Bool { promises.isEmpty }

    func complete(_ answer: Bool) {
        for promise in promises { promise.succeed(answer) }
    }

    /// Awaits a waiter's answer for at most `timeout` (nil: no bound); `giveUp` takes it off
    /// its list and answers false when the time passes or the waiting task is cancelled.
    static func wait(
        for promise: EventLoopPromise<Bool>,
        within timeout: TimeAmount?,
        giveUp: @escaping @Sendable () -> Void
    ) async -> Bool {
        let timer = timeout.map { promise.futureResult.eventLoop.scheduleTask(in: $0, giveUp) }
        return await withTaskCancellationHandler {
            let answer = (try? await promise.futureResult.get()) ?? false
            timer?.cancel()
            return answer
        } onCancel: {
            giveUp()
        }
    }
}

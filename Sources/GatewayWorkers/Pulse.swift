import NIOConcurrencyHelpers
import NIOCore

/// "Something changed": a waiter takes the next beat as a future, then looks at what it waits
/// for, and waits again when it is not there yet — so a deploy or a sleeping instance advances
/// on the pool's events (a link ready or lost, a connection released or gone) instead of
/// polling. Take the future before looking: a change between the look and the wait is not
/// missed.
final class Pulse: Sendable {
    private enum State {
        case beating([EventLoopPromise<Void>])
        /// The pool stopped: every wait ends at once.
        case ended
    }

    private let state = NIOLockedValueBox(State.beating([]))

    /// Succeeds on `eventLoop` at the next beat (at once once ended).
    func next(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        state.withLockedValue { state -> EventLoopFuture<Void> in
            guard case .beating(var waiting) = state else { return eventLoop.makeSucceededVoidFuture() }
            let promise = eventLoop.makePromise(of: Void.self)
            waiting.append(promise)
            state = .beating(waiting)
            return promise.futureResult
        }
    }

    func beat() {
        let waiting = state.withLockedValue { state -> [EventLoopPromise<Void>] in
            guard case .beating(let waiting) = state, !waiting.isEmpty else { return [] }
            state = .beating([])
            return waiting
        }
        for promise in waiting { promise.succeed() }
    }

    func end() {
        let waiting = state.withLockedValue { state -> [EventLoopPromise<Void>] in
            guard case .beating(let waiting) = state else { return [] }
            state = .ended
            return waiting
        }
        for promise in waiting { promise.succeed() }
    }

    deinit {
        // A waiter that gave up (its time passed) left its promise here: completed, not leaked.
        if case .beating(let waiting) = state.withLockedValue({ $0 }) {
            for promise in waiting { promise.succeed() }
        }
    }
}

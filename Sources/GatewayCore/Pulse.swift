import NIOConcurrencyHelpers
import NIOCore

/// "Something changed": a waiter takes the next beat, then looks at what it waits for, and
/// waits for the beat when it is not there yet — so a deploy or a sleeping instance advances on
/// the pool's events (a link ready or lost, a connection released or gone) instead of polling.
/// The beat is taken before the look: a change between the look and the wait is not missed.
/// A wait that gives up takes itself off the list.
public final class Pulse: Sendable {
    /// One waiter's next beat.
    public struct Beat: Sendable {
        fileprivate let promise: EventLoopPromise<Bool>
    }

    private enum State {
        case beating(Waiters)
        /// The pool stopped: every wait ends at once.
        case ended
    }

    private let state = NIOLockedValueBox(State.beating(Waiters()))

    public init() {}

    /// The next beat, for `wait(for:within:)`; one taken after `end()` has come already.
    public func next(on eventLoop: any EventLoop) -> Beat {
        let promise = eventLoop.makePromise(of: Bool.self)
        let ended = state.withLockedValue { state -> Bool in
            guard case .beating(var waiting) = state else { return true }
            waiting.add(promise)
            state = .beating(waiting)
            return false
        }
        if ended { promise.succeed(false) }
        return Beat(promise: promise)
    }

    /// Whether the beat came within `timeout` (false: the time passed, the pulse ended or the
    /// task was cancelled).
    public func wait(for beat: Beat, within timeout: TimeAmount) async -> Bool {
        let promise = beat.promise
        return await Waiters.wait(for: promise, within: timeout) { self.giveUp(promise) }
    }

    public func beat() {
        let waiting = state.withLockedValue { state -> Waiters in
            guard case .beating(let waiting) = state, !waiting.isEmpty else { return Waiters() }
            state = .beating(Waiters())
            return waiting
        }
        waiting.complete(true)
    }

    public func end() {
        let waiting = state.withLockedValue { state -> Waiters in
            guard case .beating(let waiting) = state else { return Waiters() }
            state = .ended
            return waiting
        }
        waiting.complete(false)
    }

    /// A beat taken but not waited for (what it waited for was there already).
    public func forget(_ beat: Beat) {
        giveUp(beat.promise)
    }

    private func giveUp(_ promise: EventLoopPromise<Bool>) {
        state.withLockedValue { state in
            guard case .beating(var waiting) = state else { return }
            waiting.remove(promise)
            state = .beating(waiting)
        }
        promise.succeed(false)
    }
}

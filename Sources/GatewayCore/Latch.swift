import NIOConcurrencyHelpers
import NIOCore

/// A one-way switch: closed until `open()`, open for good after. Futures handed out before it
/// opens succeed when it does, those handed out after succeed at once — so a waiter that asks
/// just as it opens is never missed, and nobody polls a flag (a worker pool's first link, a
/// process's exit, a service's retirement or shutdown).
public final class Latch: Sendable {
    private enum State {
        case closed([EventLoopPromise<Void>])
        case open
        /// What it stood for can no longer happen (its pool stopped first): waiters fail.
        case ended
    }

    public struct Ended: Error {}

    private let state: NIOLockedValueBox<State>

    public init(open: Bool = false) {
        state = NIOLockedValueBox(open ? .open : .closed([]))
    }

    public var isOpen: Bool {
        state.withLockedValue { if case .open = $0 { true } else { false } }
    }

    public func open() {
        let waiting = state.withLockedValue { state -> [EventLoopPromise<Void>] in
            guard case .closed(let waiting) = state else { return [] }
            state = .open
            return waiting
        }
        for promise in waiting { promise.succeed() }
    }

    /// Fails every waiter, now and later, unless the latch opened first.
    public func end() {
        let waiting = state.withLockedValue { state -> [EventLoopPromise<Void>] in
            guard case .closed(let waiting) = state else { return [] }
            state = .ended
            return waiting
        }
        for promise in waiting { promise.fail(Ended()) }
    }

    /// Succeeds on `eventLoop` once the latch is open.
    public func whenOpen(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        state.withLockedValue { state -> EventLoopFuture<Void> in
            if case .ended = state { return eventLoop.makeFailedFuture(Ended()) }
            guard case .closed(var waiting) = state else { return eventLoop.makeSucceededVoidFuture() }
            let promise = eventLoop.makePromise(of: Void.self)
            waiting.append(promise)
            state = .closed(waiting)
            return promise.futureResult
        }
    }

    deinit {
        // A waiter that gave up (its time passed) left its promise here: failed, not leaked.
        if case .closed(let waiting) = state.withLockedValue({ $0 }) {
            for promise in waiting { promise.fail(Ended()) }
        }
    }
}

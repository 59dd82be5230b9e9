/// The life of one HTTP/1.1 connection before it becomes a WebSocket (or closes), as a value:
/// each event returns what to do and `HTTPConnectionHandler` does it.
///
/// A request is decided when its head arrives and answered when its end does; an upgrade then
/// waits for its route's verdict (a token check, a worker's accept), and a drain that comes
/// meanwhile turns the answer into 503. A drain between requests closes the connection at once;
/// during a request the answer says `Connection: close`.
struct HTTPConnectionState {
    enum Phase: Equatable {
        /// Between requests (or before the first).
        case idle
        /// The head arrived and was decided; its end has not.
        case reading
        /// An upgrade waits for its route's verdict.
        case awaitingVerdict
        /// The connection is no longer HTTP: upgraded, passed through, or closing after a
        /// final answer.
        case done
    }

    /// What to do when a request's end arrives.
    enum EndAction<Decided> {
        /// Answer with what was decided at the head; `keepAlive` is false once draining.
        case answer(Decided, keepAlive: Bool)
        /// Ask the route whether to upgrade.
        case askRoute(Decided)
        /// A drain began: an upgrade is refused with 503.
        case refuseDraining
        case none
    }

    enum VerdictAction: Equatable {
        /// Carry out the accept (upgrade, or pass through).
        case proceed
        /// The client left or a drain began while the route decided: the route's application
        /// is told the upgrade is abandoned; a client still there gets 503.
        case abandon(answerDraining: Bool)
    }

    /// Where the connection is, and whether the gateway drains (`Connection: close`, 503 for
    /// an upgrade) or the connection failed (nothing more is read).
    enum State: Equatable {
        case idle(draining: Bool)
        case reading(draining: Bool)
        case awaitingVerdict(draining: Bool)
        /// A malformed request was answered (400/431) when `failed`.
        case done(failed: Bool)
    }

    private(set) var state = State.idle(draining: false)

    var phase: Phase {
        switch state {
        case .idle: .idle
        case .reading: .reading
        case .awaitingVerdict: .awaitingVerdict
        case .done: .done
        }
    }

    /// A request head arrived: false when nothing more is read on this connection.
    mutating func headArrived() -> Bool {
        guard case .idle(let draining) = state else { return false }
        state = .reading(draining: draining)
        return true
    }

    /// The request's end arrived; `isUpgrade` says what the head was decided to be.
    mutating func endArrived<Decided>(_ decided: Decided?, isUpgrade: Bool) -> EndAction<Decided> {
        guard case .reading(let draining) = state, let decided else { return .none }
        if isUpgrade {
            guard !draining else {
                state = .done(failed: false)
                return .refuseDraining
            }
            state = .awaitingVerdict(draining: false)
            return .askRoute(decided)
        }
        state = .idle(draining: draining)
        return .answer(decided, keepAlive: !draining)
    }

    /// The route refused the upgrade, or it was refused before the route was asked: the answer
    /// closes the connection.
    mutating func upgradeRefused() {
        if case .done = state { return }
        state = .done(failed: false)
    }

    /// The route accepted the upgrade.
    mutating func upgradeAccepted(clientActive: Bool) -> VerdictAction {
        guard case .awaitingVerdict(let draining) = state else { return .abandon(answerDraining: false) }
        state = .done(failed: false)
        guard clientActive, !draining else { return .abandon(answerDraining: clientActive) }
        return .proceed
    }

    /// A request the parser could not read: true the first time (answer it, then close).
    mutating func malformed() -> Bool {
        if case .done(failed: true) = state { return false }
        state = .done(failed: true)
        return true
    }

    /// The gateway drains: true when the connection is to close now (between requests).
    mutating func quiesce() -> Bool {
        switch state {
        case .idle:
            state = .idle(draining: true)
            return true
        case .reading:
            state = .reading(draining: true)
        case .awaitingVerdict:
            state = .awaitingVerdict(draining: true)
        case .done:
            break
        }
        return false
    }
}

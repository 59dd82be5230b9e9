import NIOCore
import NIOWebSocket

/// The rules of a `frames` relay, as a value: which side started closing, what the other side
/// gets, and the keepalive towards the upstream. `FramesRelay` does what the answers say.
struct FramesRelayState {
    enum Phase: Equatable {
        /// Both legs carry messages.
        case open
        /// The client's session ended; the upstream was sent a Close and its answer is awaited.
        case clientClosing
        /// The upstream sent a Close, was answered, and the client is being closed with its code.
        case upstreamClosing
        /// Nothing is left to relay or answer.
        case closed
    }

    enum CloseAction: Equatable {
        /// The upstream started the closing handshake: answer it and close the client with its code.
        case answerAndRelay
        /// The upstream answered our Close: end TCP.
        case closeTCP
        case ignore
    }

    enum KeepaliveAction: Equatable {
        case wait(TimeAmount)
        /// Send a ping and look again after this long.
        case ping(TimeAmount)
        /// No answer within the pong timeout: the upstream is lost.
        case lost
        /// Closing: the close timer bounds what is left.
        case none
    }

    /// The keepalive towards the upstream, kept while both legs are open.
    struct Keepalive: Equatable {
        var lastHeard: NIODeadline
        var pingSentAt: NIODeadline?
    }

    enum State: Equatable {
        case open(Keepalive)
        case clientClosing
        case upstreamClosing
        case closed
    }

    private(set) var state: State
    /// A close for the client that came before its session opened.
    private var deferredClientClose: (WebSocketErrorCode, String)?

    init(now: NIODeadline) {
        state = .open(Keepalive(lastHeard: now))
    }

    var phase: Phase {
        switch state {
        case .open: .open
        case .clientClosing: .clientClosing
        case .upstreamClosing: .upstreamClosing
        case .closed: .closed
        }
    }

    /// Frames from the upstream are looked at (open, or awaiting the answer to our Close).
    var readsUpstreamFrames: Bool { phase == .open || phase == .clientClosing }
    /// Data messages cross only while both legs are open.
    var relaysMessages: Bool { phase == .open }

    /// Anything from the upstream counts as an answer to a ping.
    mutating func heard(now: NIODeadline) {
        guard case .open = state else { return }
        state = .open(Keepalive(lastHeard: now))
    }

    mutating func upstreamSentClose() -> CloseAction {
        switch state {
        case .open:
            state = .upstreamClosing
            return .answerAndRelay
        case .clientClosing:
            state = .closed
            return .closeTCP
        case .upstreamClosing, .closed:
            return .ignore
        }
    }

    /// The upstream broke the protocol or a limit: true when this is news (fail it once).
    mutating func upstreamFailed() -> Bool {
        guard readsUpstreamFrames else { return false }
        state = .closed
        return true
    }

    /// The upstream's TCP ended: true when that was not part of a closing handshake, so the
    /// client must be told the upstream was lost.
    mutating func upstreamClosed() -> Bool {
        defer { state = .closed }
        return phase == .open
    }

    /// The client's session ended: true when the upstream must be sent a Close.
    mutating func clientClosed() -> Bool {
        guard case .open = state else { return false }
        state = .clientClosing
        return true
    }

    mutating func clientCloseDeferred(code: WebSocketErrorCode, reason: String) {
        if deferredClientClose == nil { deferredClientClose = (code, reason) }
    }

    mutating func takeDeferredClientClose() -> (WebSocketErrorCode, String)? {
        defer { deferredClientClose = nil }
        return deferredClientClose
    }

    mutating func keepaliveFired(now: NIODeadline, interval: TimeAmount, timeout: TimeAmount) -> KeepaliveAction {
        guard case .open(var keepalive) = state else { return .none }
        if let sent = keepalive.pingSentAt {
            let waited = now - sent
            guard waited < timeout else {
                state = .closed
                return .lost
            }
            return .wait(timeout - waited)
        }
        let quiet = now - keepalive.lastHeard
        guard quiet >= interval else { return .wait(interval - quiet) }
        keepalive.pingSentAt = now
        state = .open(keepalive)
        return .ping(timeout)
    }
}

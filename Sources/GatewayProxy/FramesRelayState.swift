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

    private(set) var phase = Phase.open
    private var lastHeard: NIODeadline
    private var pingSentAt: NIODeadline?
    /// A close for the client that came before its session opened.
    private var deferredClientClose: (WebSocketErrorCode, String)?

    init(now: NIODeadline) {
        lastHeard = now
    }

    /// Frames from the upstream are looked at (open, or awaiting the answer to our Close).
    var readsUpstreamFrames: Bool { phase == .open || phase == .clientClosing }
    /// Data messages cross only while both legs are open.
    var relaysMessages: Bool { phase == .open }

    /// Anything from the upstream counts as an answer to a ping.
    mutating func heard(now: NIODeadline) {
        lastHeard = now
        pingSentAt = nil
    }

    mutating func upstreamSentClose() -> CloseAction {
        switch phase {
        case .open:
            phase = .upstreamClosing
            return .answerAndRelay
        case .clientClosing:
            phase = .closed
            return .closeTCP
        case .upstreamClosing, .closed:
            return .ignore
        }
    }

    /// The upstream broke the protocol or a limit: true when this is news (fail it once).
    mutating func upstreamFailed() -> Bool {
        guard phase == .open || phase == .clientClosing else { return false }
        phase = .closed
        return true
    }

    /// The upstream's TCP ended: true when that was not part of a closing handshake, so the
    /// client must be told the upstream was lost.
    mutating func upstreamClosed() -> Bool {
        defer { phase = .closed }
        return phase == .open
    }

    /// The client's session ended: true when the upstream must be sent a Close.
    mutating func clientClosed() -> Bool {
        guard phase == .open else { return false }
        phase = .clientClosing
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
        guard phase == .open else { return .none }
        if let sent = pingSentAt {
            let waited = now - sent
            guard waited < timeout else {
                phase = .closed
                return .lost
            }
            return .wait(timeout - waited)
        }
        let quiet = now - lastHeard
        guard quiet >= interval else { return .wait(interval - quiet) }
        pingSentAt = now
        return .ping(timeout)
    }
}

import GatewayCore
import NIOCore
import NIOWebSocket

/// The rules of one WebSocket session as a value: the frame sequence RFC 6455 allows, the
/// closing handshake, keepalive, the idle timeout and the message rate. Each event returns what
/// to do, and `WebSocketSessionHandler` does it (frames, timers, the application), so every
/// rule is tested without a channel and with a clock the test moves.
///
/// Message bytes (reassembly, inflation, UTF-8) stay with the handler: this type decides which
/// frames may come and what a session owes the client, not what the messages say.
struct WebSocketSessionState {
    enum Phase: Equatable {
        case open
        /// We sent Close and wait for the client's (or the close timeout).
        case closeSent
        /// Both sides are done, or TCP is gone.
        case closed
    }

    /// What to do with a frame from the client.
    enum FrameAction: Equatable {
        /// The first frame of a message: the handler starts reassembling it (and finishes it
        /// at once when `fin` is set).
        case startMessage(WebSocketMessage.Kind, compressed: Bool)
        /// A continuation of the message being reassembled.
        case continueMessage(compressed: Bool)
        case sendPong
        /// The client's Close, the session open: the handler checks its payload and calls
        /// `closeFrameArrived` (or fails the session).
        case readClose
        /// The client answered our Close: the server closes TCP first (§7.1.1).
        case closeTCP
        /// After our Close only the client's Close matters; nothing else is read.
        case ignore
        /// The session is closed with this code.
        case fail(WebSocketErrorCode, String)
        /// Over `max_messages_per_second`: closed with 1008.
        case rateLimited
    }

    /// What a keepalive timer asks for.
    enum KeepaliveAction: Equatable {
        /// The client was heard from: look again after this long.
        case wait(TimeAmount)
        /// Silence: ping, and look again after this long.
        case ping(TimeAmount)
        /// No answer to the ping: the client is gone or stuck, so no closing handshake can be
        /// expected; send 1011 and drop TCP.
        case abort
        case none
    }

    enum IdleAction: Equatable {
        case wait(TimeAmount)
        case close(WebSocketErrorCode, String)
        case none
    }

    /// What the rules are read from: the route's limits and whether permessage-deflate was
    /// negotiated (RSV1 means "compressed" only then).
    struct Rules {
        var limits: WebSocketLimits
        var compression: Bool
    }

    /// What an open session keeps: the message being reassembled, keepalive and idle flags,
    /// and its rates.
    struct Open {
        /// The kind and compression of the message being reassembled.
        var assembling: (kind: WebSocketMessage.Kind, compressed: Bool)?
        var heardFromClient = false
        var awaitingPong = false
        var dataSinceIdleCheck = false
        var messageRate: TokenBucket
        var pingRate: TokenBucket
        /// Bytes the client's compressed frames inflated to, against
        /// `maxInflatedBytesPerSecond`: a burst of one megabyte (less when the rate is lower),
        /// then the rate.
        var inflateRate: TokenBucket
    }

    /// How it ended: the reason of a Close the client started with, and of the one this side
    /// sent; whether the application and the log were told.
    struct Ended {
        var reasonReceived: String?
        var reasonSent: String?
        var reported = false
    }

    enum State {
        case open(Open)
        /// We sent Close (with this reason) and wait for the client's, or the close timeout.
        case closeSent(reason: String)
        /// Both sides are done, or TCP is gone.
        case closed(Ended)
        /// Only while an event changes an open session, so that nothing is copied.
        case modifying
    }

    let rules: Rules
    private(set) var state: State
    private(set) var statistics = SessionStatistics()

    init(limits: WebSocketLimits, compression: Bool, now: NIODeadline) {
        rules = Rules(limits: limits, compression: compression)
        let inflated = Double(limits.maxInflatedBytesPerSecond)
        state = .open(
            Open(
                messageRate: TokenBucket(
                    rate: limits.maxMessagesPerSecond,
                    burst: Double(limits.messageBurst),
                    now: now
                ),
                pingRate: TokenBucket(rate: limits.maxPingsPerSecond, burst: Double(limits.messageBurst), now: now),
                inflateRate: TokenBucket(rate: inflated, burst: min(inflated, 1_048_576), now: now)
            )
        )
    }

    var limits: WebSocketLimits { rules.limits }

    var phase: Phase {
        switch state {
        case .open, .modifying: .open
        case .closeSent: .closeSent
        case .closed: .closed
        }
    }

    var isOpen: Bool {
        if case .open = state { true } else { false }
    }

    /// The kind and compression of the message being reassembled.
    var assembling: (kind: WebSocketMessage.Kind, compressed: Bool)? {
        if case .open(let open) = state { open.assembling } else { nil }
    }

    /// The reason that goes with the close code the application is told: the client's, when it
    /// started the closing handshake; otherwise the one sent to it ("" when there was none).
    var closeReason: String {
        switch state {
        case .closed(let ended): ended.reasonReceived ?? ended.reasonSent ?? ""
        case .closeSent(let reason): reason
        case .open, .modifying: ""
        }
    }

    /// The code the application and the access log are told: the client's, else ours.
    var closeCode: WebSocketErrorCode? { statistics.closeCodeReceived ?? statistics.closeCodeSent }

    /// Changes an open session in place; nil when it is not open.
    private mutating func whileOpen<Result>(_ body: (inout Open) -> Result) -> Result? {
        guard case .open(var open) = state else { return nil }
        state = .modifying
        defer { state = .open(open) }
        return body(&open)
    }

    // MARK: Frames

    mutating func frameArrived(
        opcode: WebSocketOpcode,
        masked: Bool,
        rsv1: Bool,
        rsv2: Bool,
        rsv3: Bool,
        now: NIODeadline
    ) -> FrameAction {
        switch state {
        case .open: break
        case .closeSent: return opcode == .connectionClose ? .closeTCP : .ignore
        case .closed, .modifying: return .ignore
        }
        let compression = rules.compression
        return whileOpen { open in
            open.heardFromClient = true
            return Self.frame(
                opcode: opcode,
                masked: masked,
                rsv: (rsv1, rsv2, rsv3),
                now: now,
                open: &open,
                compression: compression
            )
        } ?? .ignore
    }

    private static func frame(
        opcode: WebSocketOpcode,
        masked: Bool,
        rsv: (Bool, Bool, Bool),
        now: NIODeadline,
        open: inout Open,
        compression: Bool
    ) -> FrameAction {
        let (rsv1, rsv2, rsv3) = rsv
        // §5.1: a server must fail a connection whose client frames are not masked.
        guard masked else { return .fail(.protocolError, "frame not masked") }
        // RSV2/RSV3 mean nothing without an extension that defines them.
        guard !rsv2, !rsv3 else { return .fail(.protocolError, "reserved bit set") }
        switch opcode {
        case .text, .binary:
            guard open.assembling == nil else {
                return .fail(.protocolError, "new message before the previous one ended")
            }
            guard !rsv1 || compression else { return .fail(.protocolError, "RSV1 set without permessage-deflate") }
            let kind: WebSocketMessage.Kind = opcode == .text ? .text : .binary
            open.assembling = (kind, rsv1)
            return .startMessage(kind, compressed: rsv1)
        case .continuation:
            guard let assembling = open.assembling else {
                return .fail(.protocolError, "continuation without a message")
            }
            guard !rsv1 else { return .fail(.protocolError, "RSV1 set on a continuation frame") }
            return .continueMessage(compressed: assembling.compressed)
        case .ping:
            guard !rsv1 else { return .fail(.protocolError, "RSV1 set on a control frame") }
            guard takeMessageToken(&open.messageRate, now: now) else { return .rateLimited }
            guard open.pingRate.take(now: now) else { return .fail(.policyViolation, "ping rate limit") }
            return .sendPong
        case .pong:
            guard !rsv1 else { return .fail(.protocolError, "RSV1 set on a control frame") }
            open.awaitingPong = false
            return .ignore
        case .connectionClose:
            guard !rsv1 else { return .fail(.protocolError, "RSV1 set on a control frame") }
            return .readClose
        default:
            return .fail(.protocolError, "reserved opcode")
        }
    }

    /// The message being reassembled is complete (`bytes` long): true to deliver it, false when
    /// the client is over its message rate (then the session is closed with 1008).
    mutating func messageCompleted(bytes: Int, now: NIODeadline) -> Bool {
        let withinRate =
            whileOpen { open in
                open.assembling = nil
                open.dataSinceIdleCheck = true
                return Self.takeMessageToken(&open.messageRate, now: now)
            } ?? true
        guard withinRate else { return false }
        statistics.messagesIn += 1
        statistics.bytesIn += bytes
        return true
    }

    /// A message went to the client.
    mutating func messageSent(bytes: Int) {
        statistics.messagesOut += 1
        statistics.bytesOut += bytes
        _ = whileOpen { $0.dataSinceIdleCheck = true }
    }

    /// Pushed messages that will not reach the client.
    mutating func dropped(_ count: Int) {
        statistics.messagesDropped += count
    }

    /// The client's compressed frame inflated to `bytes`: how long the session waits before it
    /// reads on, when that put it over its inflate rate (nil: it goes on at once).
    mutating func inflated(bytes: Int, now: NIODeadline) -> TimeAmount? {
        whileOpen { open -> TimeAmount? in
            guard open.inflateRate.rate > 0 else { return nil }
            open.inflateRate.spend(Double(bytes), now: now)
            let wait = open.inflateRate.wait(now: now)
            return wait > .zero ? wait : nil
        } ?? nil
    }

    private static func takeMessageToken(_ rate: inout TokenBucket, now: NIODeadline) -> Bool {
        guard rate.rate > 0 else { return true }
        return rate.take(now: now)
    }

    // MARK: Closing handshake

    /// The client's Close, checked: its code (none for an empty payload) is echoed, and the
    /// server then closes TCP.
    mutating func closeFrameArrived(code: WebSocketErrorCode?, reason: String?) {
        guard isOpen else { return }
        state = .closed(Ended(reasonReceived: reason))
        statistics.closeCodeReceived = code
        statistics.closeCodeSent = code
        statistics.closedBy = "client"
    }

    /// The client answered our Close.
    mutating func closeAnswered(code: WebSocketErrorCode?) {
        guard case .closeSent(let reason) = state else { return }
        statistics.closeCodeReceived = code
        state = .closed(Ended(reasonSent: reason))
    }

    /// Starts our closing handshake: true when the handler is to send Close (`reason` cut to
    /// what a control frame holds) and start the close timer; false when a close has begun.
    mutating func closeRequested(code: WebSocketErrorCode, reason: String) -> Bool {
        guard isOpen else { return false }
        state = .closeSent(reason: reason)
        statistics.closedBy = statistics.closedBy ?? "server"
        statistics.closeCodeSent = code
        return true
    }

    /// The client did not answer our Close in time: true to drop TCP.
    mutating func closeTimerFired() -> Bool {
        guard case .closeSent(let reason) = state else { return false }
        state = .closed(Ended(reasonSent: reason))
        return true
    }

    /// TCP is gone: true the first time, when the application and the log are to be told.
    mutating func channelClosed() -> Bool {
        switch state {
        case .open, .modifying:
            state = .closed(Ended(reported: true))
        case .closeSent(let reason):
            state = .closed(Ended(reasonSent: reason, reported: true))
        case .closed(var ended):
            guard !ended.reported else { return false }
            ended.reported = true
            state = .closed(ended)
        }
        return true
    }

    // MARK: Timers

    mutating func keepaliveFired() -> KeepaliveAction {
        let limits = rules.limits
        let action =
            whileOpen { open -> KeepaliveAction in
                if open.heardFromClient {
                    open.heardFromClient = false
                    open.awaitingPong = false
                    return .wait(limits.pingInterval)
                }
                if !open.awaitingPong {
                    open.awaitingPong = true
                    return .ping(limits.pongTimeout)
                }
                return .abort
            } ?? .none
        guard action == .abort else { return action }
        state = .closed(Ended())
        statistics.closedBy = "server"
        statistics.closeCodeSent = .unexpectedServerError
        return .abort
    }

    mutating func idleTimerFired() -> IdleAction {
        let idleTimeout = rules.limits.idleTimeout
        guard idleTimeout > .zero else { return .none }
        return whileOpen { open -> IdleAction in
            guard !open.dataSinceIdleCheck else {
                open.dataSinceIdleCheck = false
                return .wait(idleTimeout)
            }
            return .close(.normalClosure, "idle timeout")
        } ?? .none
    }
}

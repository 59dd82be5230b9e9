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

    let limits: WebSocketLimits
    /// permessage-deflate was negotiated (RSV1 means "compressed" only then).
    let compression: Bool
    private(set) var phase = Phase.open
    private(set) var statistics = SessionStatistics()
    /// The kind and compression of the message being reassembled.
    private(set) var assembling: (kind: WebSocketMessage.Kind, compressed: Bool)?
    private var heardFromClient = false
    private var awaitingPong = false
    private var dataSinceIdleCheck = false
    private var messageRate: TokenBucket
    private var pingRate: TokenBucket
    /// Bytes the client's compressed frames inflated to, against `maxInflatedBytesPerSecond`: a
    /// burst of one megabyte (less when the rate is lower), then the rate.
    private var inflateRate: TokenBucket
    /// The reason of a Close the client started with, and of the one this side sent.
    private var closeReasonReceived: String?
    private var closeReasonSent: String?
    private var reported = false

    init(limits: WebSocketLimits, compression: Bool, now: NIODeadline) {
        self.limits = limits
        self.compression = compression
        self.messageRate = TokenBucket(
            rate: limits.maxMessagesPerSecond,
            burst: Double(limits.messageBurst),
            now: now
        )
        self.pingRate = TokenBucket(rate: limits.maxPingsPerSecond, burst: Double(limits.messageBurst), now: now)
        let inflated = Double(limits.maxInflatedBytesPerSecond)
        self.inflateRate = TokenBucket(rate: inflated, burst: min(inflated, 1_048_576), now: now)
    }

    var isOpen: Bool { phase == .open }

    /// The reason that goes with the close code the application is told: the client's, when it
    /// started the closing handshake; otherwise the one sent to it ("" when there was none).
    var closeReason: String { closeReasonReceived ?? closeReasonSent ?? "" }

    /// The code the application and the access log are told: the client's, else ours.
    var closeCode: WebSocketErrorCode? { statistics.closeCodeReceived ?? statistics.closeCodeSent }

    // MARK: Frames

    mutating func frameArrived(
        opcode: WebSocketOpcode,
        masked: Bool,
        rsv1: Bool,
        rsv2: Bool,
        rsv3: Bool,
        now: NIODeadline
    ) -> FrameAction {
        heardFromClient = true
        switch phase {
        case .open: break
        case .closeSent: return opcode == .connectionClose ? .closeTCP : .ignore
        case .closed: return .ignore
        }
        // §5.1: a server must fail a connection whose client frames are not masked.
        guard masked else { return .fail(.protocolError, "frame not masked") }
        // RSV2/RSV3 mean nothing without an extension that defines them.
        guard !rsv2, !rsv3 else { return .fail(.protocolError, "reserved bit set") }
        switch opcode {
        case .text, .binary:
            guard assembling == nil else { return .fail(.protocolError, "new message before the previous one ended") }
            guard !rsv1 || compression else { return .fail(.protocolError, "RSV1 set without permessage-deflate") }
            let kind: WebSocketMessage.Kind = opcode == .text ? .text : .binary
            assembling = (kind, rsv1)
            return .startMessage(kind, compressed: rsv1)
        case .continuation:
            guard let assembling else { return .fail(.protocolError, "continuation without a message") }
            guard !rsv1 else { return .fail(.protocolError, "RSV1 set on a continuation frame") }
            return .continueMessage(compressed: assembling.compressed)
        case .ping:
            guard !rsv1 else { return .fail(.protocolError, "RSV1 set on a control frame") }
            guard takeMessageToken(now: now) else { return .rateLimited }
            guard pingRate.take(now: now) else { return .fail(.policyViolation, "ping rate limit") }
            return .sendPong
        case .pong:
            guard !rsv1 else { return .fail(.protocolError, "RSV1 set on a control frame") }
            awaitingPong = false
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
        assembling = nil
        guard takeMessageToken(now: now) else { return false }
        statistics.messagesIn += 1
        statistics.bytesIn += bytes
        dataSinceIdleCheck = true
        return true
    }

    /// A message went to the client.
    mutating func messageSent(bytes: Int) {
        statistics.messagesOut += 1
        statistics.bytesOut += bytes
        dataSinceIdleCheck = true
    }

    /// Pushed messages that will not reach the client.
    mutating func dropped(_ count: Int) {
        statistics.messagesDropped += count
    }

    /// The client's compressed frame inflated to `bytes`: how long the session waits before it
    /// reads on, when that put it over its inflate rate (nil: it goes on at once).
    mutating func inflated(bytes: Int, now: NIODeadline) -> TimeAmount? {
        guard inflateRate.rate > 0 else { return nil }
        inflateRate.spend(Double(bytes), now: now)
        let wait = inflateRate.wait(now: now)
        return wait > .zero ? wait : nil
    }

    private mutating func takeMessageToken(now: NIODeadline) -> Bool {
        guard messageRate.rate > 0 else { return true }
        return messageRate.take(now: now)
    }

    // MARK: Closing handshake

    /// The client's Close, checked: its code (none for an empty payload) is echoed, and the
    /// server then closes TCP.
    mutating func closeFrameArrived(code: WebSocketErrorCode?, reason: String?) {
        guard phase == .open else { return }
        phase = .closed
        assembling = nil
        statistics.closeCodeReceived = code
        statistics.closeCodeSent = code
        statistics.closedBy = "client"
        closeReasonReceived = reason
    }

    /// The client answered our Close.
    mutating func closeAnswered(code: WebSocketErrorCode?) {
        guard phase == .closeSent else { return }
        statistics.closeCodeReceived = code
        phase = .closed
    }

    /// Starts our closing handshake: true when the handler is to send Close (`reason` cut to
    /// what a control frame holds) and start the close timer; false when a close has begun.
    mutating func closeRequested(code: WebSocketErrorCode, reason: String) -> Bool {
        guard phase == .open else { return false }
        phase = .closeSent
        assembling = nil
        statistics.closedBy = statistics.closedBy ?? "server"
        statistics.closeCodeSent = code
        closeReasonSent = reason
        return true
    }

    /// The client did not answer our Close in time: true to drop TCP.
    mutating func closeTimerFired() -> Bool {
        guard phase == .closeSent else { return false }
        phase = .closed
        return true
    }

    /// TCP is gone: true the first time, when the application and the log are to be told.
    mutating func channelClosed() -> Bool {
        phase = .closed
        assembling = nil
        guard !reported else { return false }
        reported = true
        return true
    }

    // MARK: Timers

    mutating func keepaliveFired() -> KeepaliveAction {
        guard phase == .open else { return .none }
        if heardFromClient {
            heardFromClient = false
            awaitingPong = false
            return .wait(limits.pingInterval)
        }
        if !awaitingPong {
            awaitingPong = true
            return .ping(limits.pongTimeout)
        }
        phase = .closed
        statistics.closedBy = "server"
        statistics.closeCodeSent = .unexpectedServerError
        return .abort
    }

    mutating func idleTimerFired() -> IdleAction {
        guard phase == .open, limits.idleTimeout > .zero else { return .none }
        if dataSinceIdleCheck {
            dataSinceIdleCheck = false
            return .wait(limits.idleTimeout)
        }
        return .close(.normalClosure, "idle timeout")
    }
}

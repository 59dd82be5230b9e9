import GatewayCore
import GatewayWebSocket
import NIOCore

/// What one connection of an `http` route owes its app, as a value: the client's messages
/// waiting, the one request in flight, its attempts, and the close event still to send. It
/// decides; `HTTPBackendConnection` posts, schedules and closes.
///
/// Messages reach the app in order, one request at a time per connection. While a request is
/// out, the client's next messages queue (within `queue_messages` and `queue_bytes`); when it
/// is answered, everything queued goes in the next request (up to `batch_messages`). A request
/// the app cannot have seen (no connection) is sent again, as are `open` and `close` whatever
/// failed; a `message` the app may have seen is not. When messages cannot reach the app the
/// client is closed with `unavailable_close_code`, and the close event still tells the app.
struct HTTPBackendConnectionState {
    /// An event's request, before headers.
    enum Event: Equatable {
        case messages([WebSocketMessage])
        case close(code: UInt16?)
    }

    enum Action: Equatable {
        case none
        /// Post this event (attempt counts from 0).
        case post(Event, attempt: Int)
        /// Post the request in flight again after `delay`.
        case retry(after: TimeAmount)
        /// Close the client with `unavailable_close_code`; `lost` queued messages never reached the app.
        case closeUnavailable(reason: String, lost: Int)
        /// Nothing more will be posted for this connection.
        case finished
    }

    struct Limits {
        var queueMessages: Int
        var queueBytes: Int
        var batchMessages: Int
        var retries: Int
    }

    /// What is owed to the app: the client's messages waiting, the request in flight and its
    /// attempts. An array, not a ring: an idle connection's empty one costs no allocation, and
    /// batches leave it whole.
    struct Outbox {
        var queue: [WebSocketMessage] = []
        var queuedBytes = 0
        var inFlight: Event?
        var attempt = 0
        var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(2))
    }

    /// The client's side: open, or its session ended with this code (nil: TCP just ended).
    enum Client: Equatable {
        case open
        case closed(code: UInt16?)
    }

    enum State {
        /// Messages go to the app.
        case serving(Outbox, client: Client)
        /// Messages can no longer reach the app: the client is being closed, and what waited
        /// was dropped; the close event still goes.
        case unavailable(Outbox, client: Client)
        /// The close event went (or is out): nothing more is queued.
        case closeSent(Outbox)
        /// Only while an event changes the state, so that the queue is not copied.
        case modifying
    }

    let limits: Limits
    private var state = State.serving(Outbox(), client: .open)

    init(limits: Limits) {
        self.limits = limits
    }

    private var outbox: Outbox {
        switch state {
        case .serving(let outbox, _), .unavailable(let outbox, _), .closeSent(let outbox): return outbox
        case .modifying: preconditionFailure("read while it changes")
        }
    }

    var inFlight: Event? { outbox.inFlight }
    var queuedMessages: Int { outbox.queue.count }
    var unavailable: Bool {
        if case .unavailable = state { true } else { false }
    }

    /// A message from the client.
    mutating func received(_ message: WebSocketMessage) -> Action {
        guard case .serving(var outbox, .open) = state else { return .none }
        let size = message.data.readableBytes
        if !outbox.queue.isEmpty,
            outbox.queue.count >= limits.queueMessages || outbox.queuedBytes + size > limits.queueBytes
        {
            return giveUp("the app is not keeping up: \(outbox.queue.count) messages wait")
        }
        state = .modifying
        outbox.queue.append(message)
        outbox.queuedBytes += size
        state = .serving(outbox, client: .open)
        return outbox.inFlight == nil ? next() : .none
    }

    /// The client's session ended.
    mutating func sessionClosed(code: UInt16?) -> Action {
        switch state {
        case .serving(let outbox, .open):
            state = .serving(outbox, client: .closed(code: code))
        case .unavailable(let outbox, .open):
            state = .unavailable(outbox, client: .closed(code: code))
        default:
            return .none
        }
        return inFlight == nil ? next() : .none
    }

    /// The app answered the request in flight with a success status (its commands are
    /// carried out by the driver first).
    mutating func answered() -> Action {
        guard inFlight != nil else { return .none }
        change { outbox in
            outbox.inFlight = nil
            outbox.attempt = 0
            outbox.backoff.reset()
        }
        return next()
    }

    /// The request in flight failed: no answer (`neverSent` when the app cannot have seen
    /// it), or (`status`) an error answer or one whose commands were not valid.
    mutating func failed(neverSent: Bool, reason: String) -> Action {
        guard let event = inFlight else { return .none }
        let isClose = if case .close = event { true } else { false }
        if (isClose || neverSent) && outbox.attempt < limits.retries {
            let delay = change { outbox in
                outbox.attempt += 1
                return outbox.backoff.next()
            }
            return .retry(after: delay)
        }
        change { outbox in
            outbox.inFlight = nil
            outbox.attempt = 0
            outbox.backoff.reset()
        }
        if isClose { return .finished }
        if case .messages(let lost) = event, !unavailable {
            return giveUp(reason, alsoLost: lost.count)
        }
        return next()
    }

    /// The retry's delay passed.
    mutating func retryDue() -> Action {
        guard let event = inFlight else { return .none }
        return .post(event, attempt: outbox.attempt)
    }

    private mutating func giveUp(_ reason: String, alsoLost: Int = 0) -> Action {
        guard case .serving(var outbox, let client) = state else { return .none }
        let lost = outbox.queue.count + alsoLost
        outbox.queue.removeAll()
        outbox.queuedBytes = 0
        state = .unavailable(outbox, client: client)
        return .closeUnavailable(reason: reason, lost: lost)
    }

    /// After the client was closed as unavailable: the close event is next, once nothing is out.
    mutating func afterUnavailable() -> Action {
        inFlight == nil ? next() : .none
    }

    private mutating func change<Result>(_ body: (inout Outbox) -> Result) -> Result {
        switch state {
        case .serving(var outbox, let client):
            state = .modifying
            defer { state = .serving(outbox, client: client) }
            return body(&outbox)
        case .unavailable(var outbox, let client):
            state = .modifying
            defer { state = .unavailable(outbox, client: client) }
            return body(&outbox)
        case .closeSent(var outbox):
            state = .modifying
            defer { state = .closeSent(outbox) }
            return body(&outbox)
        case .modifying:
            preconditionFailure("changed while it changes")
        }
    }

    private mutating func next() -> Action {
        switch state {
        case .serving(var outbox, let client) where !outbox.queue.isEmpty:
            state = .modifying
            let batch = Array(outbox.queue.prefix(limits.batchMessages))
            outbox.queue.removeFirst(batch.count)
            for message in batch { outbox.queuedBytes -= message.data.readableBytes }
            outbox.inFlight = .messages(batch)
            state = .serving(outbox, client: client)
            return .post(.messages(batch), attempt: 0)
        case .serving(var outbox, .closed(let code)), .unavailable(var outbox, .closed(let code)):
            outbox.inFlight = .close(code: code)
            state = .closeSent(outbox)
            return .post(.close(code: code), attempt: 0)
        case .closeSent(let outbox):
            return outbox.inFlight == nil ? .finished : .none
        case .serving, .unavailable, .modifying:
            return .none
        }
    }
}

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

    let limits: Limits
    /// An array, not a ring: an idle connection's empty one costs no allocation, and batches
    /// leave it whole.
    private var queue: [WebSocketMessage] = []
    private var queuedBytes = 0
    private(set) var inFlight: Event?
    private var attempt = 0
    /// The client's close code once its session ended (nil inside: TCP just ended).
    private var clientClosed: UInt16??
    private var closeSent = false
    /// Messages can no longer reach the app: the client is being closed.
    private(set) var unavailable = false
    private var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(2))

    init(limits: Limits) {
        self.limits = limits
    }

    var queuedMessages: Int { queue.count }

    /// A message from the client.
    mutating func received(_ message: WebSocketMessage) -> Action {
        guard !unavailable, clientClosed == nil else { return .none }
        let size = message.data.readableBytes
        if !queue.isEmpty, queue.count >= limits.queueMessages || queuedBytes + size > limits.queueBytes {
            return giveUp("the app is not keeping up: \(queue.count) messages wait")
        }
        queue.append(message)
        queuedBytes += size
        return inFlight == nil ? next() : .none
    }

    /// The client's session ended.
    mutating func sessionClosed(code: UInt16?) -> Action {
        guard clientClosed == nil else { return .none }
        clientClosed = .some(code)
        return inFlight == nil ? next() : .none
    }

    /// The app answered the request in flight with a success status (its commands are
    /// carried out by the driver first).
    mutating func answered() -> Action {
        guard inFlight != nil else { return .none }
        inFlight = nil
        attempt = 0
        backoff.reset()
        return next()
    }

    /// The request in flight failed: no answer (`neverSent` when the app cannot have seen
    /// it), or (`status`) an error answer or one whose commands were not valid.
    mutating func failed(neverSent: Bool, reason: String) -> Action {
        guard let event = inFlight else { return .none }
        let isClose = if case .close = event { true } else { false }
        if (isClose || neverSent) && attempt < limits.retries {
            attempt += 1
            return .retry(after: backoff.next())
        }
        inFlight = nil
        attempt = 0
        backoff.reset()
        if isClose { return .finished }
        if case .messages(let lost) = event, !unavailable {
            let action = giveUp(reason, alsoLost: lost.count)
            return action
        }
        return next()
    }

    /// The retry's delay passed.
    mutating func retryDue() -> Action {
        guard let event = inFlight else { return .none }
        return .post(event, attempt: attempt)
    }

    private mutating func giveUp(_ reason: String, alsoLost: Int = 0) -> Action {
        unavailable = true
        let lost = queue.count + alsoLost
        queue.removeAll()
        queuedBytes = 0
        return .closeUnavailable(reason: reason, lost: lost)
    }

    /// After the client was closed as unavailable: the close event is next, once nothing is out.
    mutating func afterUnavailable() -> Action {
        inFlight == nil ? next() : .none
    }

    private mutating func next() -> Action {
        if !queue.isEmpty && !unavailable {
            let batch = Array(queue.prefix(limits.batchMessages))
            queue.removeFirst(batch.count)
            for message in batch { queuedBytes -= message.data.readableBytes }
            inFlight = .messages(batch)
            return .post(.messages(batch), attempt: 0)
        }
        if let code = clientClosed, !closeSent {
            closeSent = true
            inFlight = .close(code: code)
            return .post(.close(code: code), attempt: 0)
        }
        return clientClosed != nil && inFlight == nil ? .finished : .none
    }
}

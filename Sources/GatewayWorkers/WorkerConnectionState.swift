import GatewayCore
import GatewayWebSocket
import NIOCore
import NIOWebSocket
import WorkerProtocol

/// The gateway's half of one worker-route connection, as a value: each event returns what to
/// do, and `WorkerConnection` does it (writes, timers, the session). Kept free of I/O so that
/// every rule of docs/worker-protocol.md about one connection is tested without a socket and
/// with time under the test's control (`timerFired`).
///
/// A connection is, at any time: waiting for a verdict or not (`worker.authorize`); attached to
/// a link (an `open` was sent there) or not (no instance yet, or its instance died); closed or
/// not. Credit is the window the attached instance granted, less what was sent and not yet
/// returned; a message goes to the worker only when all of it fits, so the worker never holds
/// more than one window (finding 2 of the issue that introduced this type).
struct WorkerConnectionState {
    /// The two timers a connection may run.
    enum Timer: Equatable {
        /// The worker must accept or reject the upgrade in time (`worker.authorize_timeout`).
        case verdict
        /// An instance must take the connection in time (`resume_timeout`, or the authorize
        /// timeout before the upgrade).
        case instance
    }

    enum Action {
        case sendOpen(WorkerLink, WorkerFrame.Open)
        case forward(WebSocketMessage, WorkerLink)
        case sendClosed(WorkerLink, code: UInt16, reason: String)
        case pauseReading
        case resumeReading
        /// Starts the client's closing handshake (the session ignores it when not open).
        case closeClient(code: WebSocketErrorCode, reason: String)
        case acceptUpgrade
        case refuseUpgrade(status: Int, message: String)
        case startTimer(Timer, TimeAmount)
        case cancelTimer(Timer)
        /// Messages the dead instance had not returned credit for: counted as lost.
        case countLost(Int)
        /// Asks the pool for an instance (the first attach).
        case requestInstance
        /// The connection is finished: the pool forgets it.
        case detach
        /// Messages for the client that came before its session opened, now handed to it.
        case deliverEarly([WebSocketMessage])
    }

    /// What to do with a message for the client (the per-message path: no array).
    enum DeliverAction: Equatable {
        /// The session is open: it takes the message (and bounds its own queue).
        case send
        /// Kept until the session opens.
        case hold
        /// The connection is closed, or the messages kept before the upgrade fill
        /// `send_queue_bytes`: this one is dropped (and counted as an overflow).
        case drop(overflow: Bool)
    }

    /// What to do with a message read from the client (the per-message path: no array).
    enum ReceiveAction {
        case forward(WorkerLink, pauseAfter: Bool)
        /// Keep it; reads pause until credit or an instance comes.
        case hold
        /// The attached worker cannot take a message this big: the client is closed with 1009.
        case refuse(reason: String)
        case ignore
    }

    private static let resume: [Action] = [.resumeReading]

    private(set) var link: WorkerLink?
    private(set) var credit = 0
    /// Messages sent on the current link that its worker has not returned credit for.
    private(set) var unacknowledged = 0
    /// Messages read while there was no link or no credit for them, in order.
    /// (An array: empty, as it nearly always is, it costs no allocation per connection.)
    private(set) var pending: [WebSocketMessage] = []
    /// Messages for the client that came before its session opened, in order, and their bytes.
    /// With `worker.authorize` the worker subscribes and publishes right after its `accept`,
    /// and its hub commands travel over another link (on another event loop) than the
    /// `accept`: a publish may reach the connection before the upgrade it follows.
    private(set) var early: [WebSocketMessage] = []
    private var earlyBytes = 0
    private(set) var verdictPending: Bool
    private(set) var everOpened = false
    private(set) var sessionOpen = false
    private(set) var isClosed = false
    let connection: UInt64
    let fields: [(String, String)]

    init(connection: UInt64, fields: [(String, String)], verdictRequired: Bool) {
        self.connection = connection
        self.fields = fields
        self.verdictPending = verdictRequired
    }

    /// What a message costs in credit: its payload bytes, and an empty one counts as one.
    static func cost(of message: WebSocketMessage) -> Int {
        max(message.data.readableBytes, 1)
    }

    /// Why `link`'s worker cannot take `message`, if it cannot: larger than its window or its
    /// frame limit (finding 3: the worker's `max_frame_bytes` is a promise).
    static func refusal(of message: WebSocketMessage, by link: WorkerLink) -> String? {
        let limit = min(link.initialCredit, link.maxMessageBytes)
        guard Self.cost(of: message) > limit else { return nil }
        return "message too big for the worker (at most \(limit) bytes)"
    }

    // MARK: Events

    /// Before the upgrade, with `worker.authorize`: the worker must answer within `timeout`.
    mutating func awaitVerdict(timeout: TimeAmount) -> [Action] {
        guard verdictPending, !isClosed else { return [] }
        return [.startTimer(.verdict, timeout)]
    }

    mutating func sessionOpened() -> [Action] {
        guard !isClosed else { return [] }
        sessionOpen = true
        var actions: [Action] = []
        if !early.isEmpty {
            actions.append(.deliverEarly(early))
            early = []
            earlyBytes = 0
        }
        guard link == nil else { return actions }
        actions.append(.pauseReading)
        if !everOpened { actions.append(.requestInstance) }
        return actions
    }

    /// A message for the client, from its worker or the hub. Before the session opens it is
    /// kept, up to `limit` bytes (the route's `send_queue_bytes`; one message always fits).
    mutating func delivering(_ message: WebSocketMessage, limit: Int) -> DeliverAction {
        if sessionOpen { return isClosed ? .drop(overflow: false) : .send }
        guard !isClosed else { return .drop(overflow: false) }
        let size = message.data.readableBytes
        guard early.isEmpty || earlyBytes + size <= limit else { return .drop(overflow: true) }
        early.append(message)
        earlyBytes += size
        return .hold
    }

    mutating func received(_ message: WebSocketMessage) -> ReceiveAction {
        guard !isClosed else { return .ignore }
        if let link, pending.isEmpty {
            if let reason = Self.refusal(of: message, by: link) { return .refuse(reason: reason) }
            let cost = Self.cost(of: message)
            if cost <= credit {
                credit -= cost
                unacknowledged += 1
                return .forward(link, pauseAfter: credit == 0)
            }
        }
        pending.append(message)
        return .hold
    }

    /// The pool pinned the connection to `link`.
    mutating func attached(to link: WorkerLink) -> [Action] {
        guard !isClosed else { return [.detach] }
        let open = WorkerFrame.Open(
            connection: connection,
            resumed: everOpened && !verdictPending,
            verdictRequired: verdictPending,
            fields: fields
        )
        if WorkerFrameCodec.length(of: open) > link.maxFrameBytes {
            // The worker could not read it: as if no instance would take the connection.
            return fail(
                status: 431,
                code: WebSocketErrorCode.unexpectedServerError,
                reason: "the connection's fields exceed the worker's frame limit"
            )
        }
        self.link = link
        credit = link.initialCredit
        unacknowledged = 0
        everOpened = true
        var actions: [Action] = [.cancelTimer(.instance), .sendOpen(link, open)]
        flush(into: &actions)
        return actions
    }

    /// No instance is live: one must come within `timeout`.
    mutating func noInstance(timeout: TimeAmount) -> [Action] {
        guard !isClosed, link == nil else { return [] }
        return [.startTimer(.instance, timeout)]
    }

    /// Its link is gone (the instance died, or broke the protocol). The client stays; what the
    /// worker had not returned credit for is counted as lost (at most once).
    mutating func orphaned(from link: WorkerLink, resumeTimeout: TimeAmount) -> [Action] {
        guard !isClosed, self.link === link else { return [] }
        let lost = unacknowledged
        unacknowledged = 0
        self.link = nil
        credit = 0
        var actions: [Action] = [.pauseReading, .startTimer(.instance, resumeTimeout)]
        if lost > 0 { actions.append(.countLost(lost)) }
        actions.append(.requestInstance)
        return actions
    }

    /// A `credit` frame from `link`. Credit beyond the window is not kept: a worker that
    /// returns too much does not buy itself more than one window.
    mutating func creditReturned(messages: UInt32, bytes: UInt32, from link: WorkerLink) -> [Action] {
        guard !isClosed, self.link === link else { return [] }
        credit = min(credit + Int(bytes), link.initialCredit)
        unacknowledged = max(0, unacknowledged - Int(messages))
        // The usual case, once per round trip: nothing waits. A shared array, not a new one.
        if pending.isEmpty { return credit > 0 ? Self.resume : [] }
        var actions: [Action] = []
        flush(into: &actions)
        return actions
    }

    mutating func verdictArrived(accepted: Bool, status: UInt16, reason: String) -> [Action] {
        guard verdictPending, !isClosed else { return [] }
        verdictPending = false
        if accepted { return [.cancelTimer(.verdict), .acceptUpgrade] }
        // The worker forgot the connection already: no `closed` goes to it.
        link = nil
        return [
            .cancelTimer(.verdict),
            .refuseUpgrade(status: Int(status), message: reason.isEmpty ? "refused by the worker" : reason),
        ]
            + finish(code: nil, reason: "")
    }

    mutating func timerFired(_ timer: Timer) -> [Action] {
        guard !isClosed else { return [] }
        switch timer {
        case .verdict:
            guard verdictPending else { return [] }
            return fail(
                status: 503,
                code: WebSocketErrorCode.tryAgainLater,
                reason: "the worker did not answer in time"
            )
        case .instance:
            guard link == nil else { return [] }
            return fail(status: 503, code: WebSocketErrorCode.tryAgainLater, reason: "no worker instance is available")
        }
    }

    /// The worker's `close`: an invalid code becomes 1000 (docs/worker-protocol.md).
    func closeRequested(code: UInt16, reason: String) -> [Action] {
        guard !isClosed else { return [] }
        let valid = WebSocketErrorCode.isValidOnWire(code)
        return [.closeClient(code: valid ? WebSocketErrorCode(code: code) : .normalClosure, reason: reason)]
    }

    /// The session closed (with the client's code and reason, or the ones sent to it), or the
    /// client left before the upgrade completed (`code` nil).
    mutating func finish(code: WebSocketErrorCode?, reason: String) -> [Action] {
        guard !isClosed else { return [] }
        isClosed = true
        pending.removeAll()
        early.removeAll()
        earlyBytes = 0
        var actions: [Action] = [.cancelTimer(.verdict), .cancelTimer(.instance)]
        if let link { actions.append(.sendClosed(link, code: code?.code ?? 1005, reason: reason)) }
        link = nil
        actions.append(.detach)
        return actions
    }

    // MARK: Helpers

    /// Before the upgrade: refuse it with `status`; after: close the client with `code`.
    private mutating func fail(status: Int, code: WebSocketErrorCode, reason: String) -> [Action] {
        if verdictPending {
            verdictPending = false
            return [.refuseUpgrade(status: status, message: reason)] + finish(code: nil, reason: "")
        }
        if sessionOpen { return [.closeClient(code: code, reason: reason)] }
        return finish(code: nil, reason: "")
    }

    /// Sends what waits, as far as credit goes; reads resume once nothing waits and credit is
    /// left.
    private mutating func flush(into actions: inout [Action]) {
        guard let link else { return }
        var sent = 0
        for message in pending {
            if let reason = Self.refusal(of: message, by: link) {
                pending.removeAll()
                actions.append(.closeClient(code: WebSocketErrorCode.messageTooLarge, reason: reason))
                return
            }
            let cost = Self.cost(of: message)
            guard cost <= credit else { break }
            sent += 1
            credit -= cost
            unacknowledged += 1
            actions.append(.forward(message, link))
        }
        pending.removeFirst(sent)
        if pending.isEmpty {
            actions.append(credit > 0 ? .resumeReading : .pauseReading)
        } else {
            actions.append(.pauseReading)
        }
    }
}

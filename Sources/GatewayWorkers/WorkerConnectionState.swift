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
/// a link (an `open` was sent there), being suspended from it (its instance stops for idleness
/// or a deploy moves it: the worker must `release` it first), or not attached (no instance
/// yet, its instance died, or hibernated: nothing needs a worker); closed or not. Messages read
/// while it is not attached wait in `pending`, up to `wakeQueueBytes` before reads pause; the
/// first one asks the pool for an instance (`ReceiveAction.wake`). Credit is the window the attached instance granted, less what was sent and not yet
/// returned; a message goes to the worker only when all of it fits, so the worker never holds
/// more than one window.
struct WorkerConnectionState {
    private static let resume: [Action] = [.resumeReading]

    private(set) var link: WorkerLink?
    private(set) var credit = 0
    /// Messages sent on the current link that its worker has not returned credit for.
    private(set) var unacknowledged = 0
    /// Messages read while there was no link or no credit for them, in order.
    /// (An array: empty, as it nearly always is, it costs no allocation per connection.)
    private(set) var pending: [WebSocketMessage] = []
    private var pendingBytes = 0
    /// Bytes `pending` may hold while no instance holds the connection.
    let wakeQueueBytes: Int
    /// An instance was asked for (`wake`) and has not come yet.
    private(set) var seeking = false
    /// The instance timer runs.
    private(set) var awaitingInstance = false
    /// What is left of `resume_timeout` after instances that took the connection and died.
    private var resumeWindow = ResumeWindow()
    /// A `suspend` went to the link's worker; nothing more is forwarded to it.
    private(set) var suspending = false
    /// Set by the worker (`attach`), handed back in the next `open`.
    private(set) var attachment: [UInt8] = []
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

    init(connection: UInt64, fields: [(String, String)], verdictRequired: Bool, wakeQueueBytes: Int = 65536) {
        self.connection = connection
        self.fields = fields
        self.verdictPending = verdictRequired
        self.wakeQueueBytes = wakeQueueBytes
    }

    /// What a message costs in credit: its payload bytes, and an empty one counts as one.
    static func cost(of message: WebSocketMessage) -> Int {
        max(message.data.readableBytes, 1)
    }

    /// Why `link`'s worker cannot take `message`, if it cannot: larger than its window or its
    /// frame limit (the worker's `max_frame_bytes` is a promise).
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
        if !everOpened { actions.append(.requestInstance(wake: !pending.isEmpty)) }
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
        let cost = Self.cost(of: message)
        if let link, !suspending {
            if pending.isEmpty {
                if let reason = Self.refusal(of: message, by: link) { return .refuse(reason: reason) }
                if cost <= credit {
                    credit -= cost
                    unacknowledged += 1
                    return .forward(link, pauseAfter: credit == 0)
                }
            }
            // Out of credit: the worker's own window bounds what waits.
            pending.append(message)
            pendingBytes += cost
            return .hold(pause: true)
        }
        pending.append(message)
        pendingBytes += cost
        let pause = pendingBytes >= wakeQueueBytes
        guard link == nil, !seeking, !awaitingInstance else { return .hold(pause: pause) }
        seeking = true
        return .wake(pause: pause)
    }

    /// The pool pinned the connection to `link`.
    mutating func attached(to link: WorkerLink, now: NIODeadline) -> [Action] {
        guard !isClosed else { return [.detach] }
        let open = WorkerFrame.Open(
            connection: connection,
            resumed: everOpened && !verdictPending,
            verdictRequired: verdictPending,
            fields: fields,
            attachment: link.version >= 2 && !attachment.isEmpty ? ByteBuffer(bytes: attachment) : nil
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
        resumeWindow.attached(now: now)
        credit = link.initialCredit
        unacknowledged = 0
        everOpened = true
        seeking = false
        awaitingInstance = false
        suspending = false
        var actions: [Action] = [.cancelTimer(.instance), .sendOpen(link, open)]
        flush(into: &actions)
        return actions
    }

    /// No instance is live: one must come within `timeout` (a timer already running is kept:
    /// asking again does not buy more time). After a loss, within what is left of it: an
    /// instance that died right after taking the connection did not reset the count.
    mutating func noInstance(timeout: TimeAmount, now: NIODeadline) -> [Action] {
        guard !isClosed, link == nil, !awaitingInstance else { return [] }
        let remaining = verdictPending ? timeout : resumeWindow.remaining(of: timeout, now: now)
        guard remaining > .zero else { return noInstanceInTime() }
        awaitingInstance = true
        return [.startTimer(.instance, remaining)]
    }

    /// The route hibernates and nothing needs a worker: the connection stays without one, its
    /// reads on (pings, auto-responses, and the message that will wake an instance).
    mutating func hibernated() -> [Action] {
        guard !isClosed, link == nil else { return [] }
        seeking = false
        // Messages came meanwhile (the pool answered a request made before them): they need
        // a worker.
        guard pending.isEmpty else {
            seeking = true
            return [.requestInstance(wake: true)]
        }
        return []
    }

    /// Its link is gone (the instance died, or broke the protocol). The client stays; what the
    /// worker had not returned credit for is counted as lost (at most once).
    mutating func orphaned(from link: WorkerLink, now: NIODeadline) -> [Action] {
        guard !isClosed, self.link === link else { return [] }
        resumeWindow.lost(now: now)
        let lost = unacknowledged
        unacknowledged = 0
        self.link = nil
        credit = 0
        suspending = false
        var actions: [Action] = []
        if lost > 0 { actions.append(.countLost(lost)) }
        actions.append(.requestInstance(wake: !pending.isEmpty || verdictPending))
        return actions
    }

    /// Its instance is stopping (idle) or being replaced (a deploy): from now on messages wait
    /// here, and the worker is asked to let the connection go — with `suspend` (version 2), or,
    /// for a version 1 worker, once it has returned credit for every message it was sent.
    mutating func suspend() -> [Action] {
        guard !isClosed, let link, !suspending, !verdictPending else { return [] }
        suspending = true
        if link.version >= 2 { return [.sendSuspend(link)] }
        return unacknowledged == 0 ? release(from: link) : []
    }

    /// The worker's `release`: every frame it sent about the connection came before it.
    mutating func releaseArrived(from link: WorkerLink) -> [Action] {
        guard !isClosed, self.link === link, suspending else { return [] }
        return release(from: link)
    }

    /// The worker's `attach`.
    mutating func attachmentSet(_ bytes: [UInt8], from link: WorkerLink) {
        guard !isClosed, self.link === link else { return }
        attachment = bytes
    }

    private mutating func release(from link: WorkerLink) -> [Action] {
        self.link = nil
        credit = 0
        unacknowledged = 0
        suspending = false
        return [.released(link), .requestInstance(wake: !pending.isEmpty)]
    }

    /// A `credit` frame from `link`. Credit beyond the window is not kept: a worker that
    /// returns too much does not buy itself more than one window.
    mutating func creditReturned(messages: UInt32, bytes: UInt32, from link: WorkerLink) -> [Action] {
        guard !isClosed, self.link === link else { return [] }
        credit = min(credit + Int(bytes), link.initialCredit)
        unacknowledged = max(0, unacknowledged - Int(messages))
        if suspending {
            // A version 1 worker has let go once it has consumed everything it was sent.
            return link.version < 2 && unacknowledged == 0 ? release(from: link) : []
        }
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
            guard link == nil, awaitingInstance else { return [] }
            awaitingInstance = false
            return noInstanceInTime()
        }
    }

    private mutating func noInstanceInTime() -> [Action] {
        fail(status: 503, code: WebSocketErrorCode.tryAgainLater, reason: "no worker instance is available")
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
        pendingBytes = 0
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
        guard let link, !suspending else { return }
        var sent = 0
        for message in pending {
            if let reason = Self.refusal(of: message, by: link) {
                pending.removeAll()
                pendingBytes = 0
                actions.append(.closeClient(code: WebSocketErrorCode.messageTooLarge, reason: reason))
                return
            }
            let cost = Self.cost(of: message)
            guard cost <= credit else { break }
            sent += 1
            credit -= cost
            pendingBytes -= cost
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

import GatewayCore
import GatewayHub
import GatewayWebSocket
import NIOCore
import WorkerProtocol

/// One client connection of a worker route: its session's application, a hub subscriber, and
/// the gateway's half of its worker-protocol state (the instance it is pinned to, the credit
/// that instance granted, the messages waiting for credit).
///
/// Every mutable property is touched only on `eventLoop`, the client's; the methods that may be
/// called from elsewhere (`deliver`, and the pool's calls) hop there first. That is what makes
/// the `@unchecked Sendable` true.
final class WorkerConnection: WebSocketApplication, HubSubscriber, @unchecked Sendable {
    let id: UInt64
    let eventLoop: any EventLoop
    let fields: [(String, String)]
    private unowned let pool: WorkerPool

    private var session: WebSocketSessionHandler?
    /// The instance this connection is open on, once `open` was sent to it.
    private var link: WorkerLink?
    /// Message bytes the instance will still take before it returns credit.
    private var credit = 0
    private var unacknowledgedMessages = 0
    /// Messages read from the client while there was no link or no credit (reads are paused, so
    /// this holds at most what was already read).
    private var pending: [WebSocketMessage] = []
    private var everOpened = false
    private var closed = false
    private var resumeTimer: Scheduled<Void>?
    private var verdict: ((UpgradeVerdict) -> Void)?
    private var verdictTimer: Scheduled<Void>?

    init(id: UInt64, eventLoop: any EventLoop, fields: [(String, String)], pool: WorkerPool) {
        self.id = id
        self.eventLoop = eventLoop
        self.fields = fields
        self.pool = pool
    }

    var subscriberID: UInt64 { id }

    // MARK: Authorization (before the upgrade)

    /// Waits for the worker's accept or reject; 503 after `timeout`.
    func awaitVerdict(timeout: TimeAmount, completion: @escaping (UpgradeVerdict) -> Void) {
        eventLoop.preconditionInEventLoop()
        verdict = completion
        verdictTimer = eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            self.giveVerdict(.refuse(status: 503, message: "the worker did not answer in time"))
            self.finish(code: nil)
        }
    }

    func verdictArrived(accepted: Bool, status: UInt16, reason: String) {
        onLoop { [self] in
            guard self.verdict != nil else { return }
            if accepted {
                self.giveVerdict(.accept(self))
            } else {
                self.giveVerdict(
                    .refuse(status: Int(status), message: reason.isEmpty ? "refused by the worker" : reason)
                )
                self.link = nil  // the worker forgot it already: no `closed` to send
                self.finish(code: nil)
            }
        }
    }

    private func giveVerdict(_ answer: UpgradeVerdict) {
        verdictTimer?.cancel()
        verdictTimer = nil
        let completion = verdict
        verdict = nil
        completion?(answer)
    }

    // MARK: WebSocketApplication (on the event loop)

    func sessionDidOpen(_ session: WebSocketSessionHandler) {
        self.session = session
        if link == nil {
            session.pauseReading()
            if !everOpened { pool.attach(self) }
        }
    }

    func session(_ session: WebSocketSessionHandler, didReceive message: WebSocketMessage) {
        guard !closed else { return }
        if let link, credit > 0, pending.isEmpty {
            forward(message, over: link)
        } else {
            pending.append(message)
            session.pauseReading()
        }
    }

    func sessionDidClose(_ session: WebSocketSessionHandler, code: UInt16?) {
        finish(code: code)
    }

    func upgradeAbandoned() {
        finish(code: nil)
    }

    private func finish(code: UInt16?) {
        guard !closed else { return }
        closed = true
        resumeTimer?.cancel()
        verdictTimer?.cancel()
        pending.removeAll()
        if let link {
            link.write(.closed(connection: id, code: code ?? 1005, reason: ""))
        }
        link = nil
        session = nil
        pool.detach(self)
    }

    private func forward(_ message: WebSocketMessage, over link: WorkerLink) {
        let bytes = message.data.readableBytes
        credit -= max(bytes, 1)
        unacknowledgedMessages += 1
        link.write(.message(connection: id, kind: message.kind == .text ? .text : .binary, payload: message.data))
        if credit <= 0 { session?.pauseReading() }
    }

    private func flushPending() {
        guard let link else { return }
        while credit > 0, !pending.isEmpty {
            forward(pending.removeFirst(), over: link)
        }
        if credit > 0, pending.isEmpty { session?.resumeReading() }
    }

    // MARK: Calls from the pool (they hop to the event loop)

    /// The pool pinned this connection to `link`: open it there.
    func attach(to link: WorkerLink) {
        eventLoop.execute { [self] in
            guard !self.closed else {
                self.pool.detach(self)
                return
            }
            self.resumeTimer?.cancel()
            self.resumeTimer = nil
            self.link = link
            self.credit = link.initialCredit
            self.unacknowledgedMessages = 0
            link.write(
                .open(
                    .init(
                        connection: self.id,
                        resumed: self.everOpened && self.verdict == nil,
                        verdictRequired: self.verdict != nil,
                        fields: self.fields
                    )
                )
            )
            self.everOpened = true
            self.flushPending()
        }
    }

    /// Its instance went away. Messages it had not acknowledged may be lost; they are counted.
    /// The client stays connected, reads paused, until the pool finds another instance — or
    /// `resumeTimeout` passes and it is closed with 1013.
    func orphan(resumeTimeout: TimeAmount) {
        eventLoop.execute { [self] in
            guard !self.closed else { return }
            self.pool.countLost(self.unacknowledgedMessages, connection: self.id)
            self.unacknowledgedMessages = 0
            self.link = nil
            self.credit = 0
            self.session?.pauseReading()
            self.startResumeTimer(resumeTimeout)
        }
    }

    /// No instance is live: wait for one, for at most `timeout`.
    func waitForInstance(timeout: TimeAmount) {
        eventLoop.execute { [self] in
            guard !self.closed, self.link == nil, self.resumeTimer == nil else { return }
            self.startResumeTimer(timeout)
        }
    }

    private func startResumeTimer(_ timeout: TimeAmount) {
        resumeTimer?.cancel()
        resumeTimer = eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            guard self.link == nil, !self.closed else { return }
            if self.verdict != nil {
                self.giveVerdict(.refuse(status: 503, message: "no worker instance is available"))
                self.finish(code: nil)
            } else if let session = self.session {
                session.close(code: CloseCode.tryAgainLater, reason: "no worker instance is available")
            } else {
                self.finish(code: nil)
            }
        }
    }

    func creditReturned(messages: UInt32, bytes: UInt32, from link: WorkerLink) {
        // As `onLoop`, spelled out: no closure to allocate on the per-message path.
        if eventLoop.inEventLoop {
            takeCredit(messages: messages, bytes: bytes, from: link)
        } else {
            eventLoop.execute { [self] in self.takeCredit(messages: messages, bytes: bytes, from: link) }
        }
    }

    private func takeCredit(messages: UInt32, bytes: UInt32, from link: WorkerLink) {
        guard self.link === link else { return }
        credit += Int(bytes)
        unacknowledgedMessages = max(0, unacknowledgedMessages - Int(messages))
        flushPending()
    }

    func closeRequested(code: UInt16, reason: String) {
        onLoop { [self] in
            let valid = CloseCode.isValidOnWire(code) ? code : CloseCode.normal
            self.session?.close(code: valid, reason: reason)
        }
    }

    /// A message for the client, from its worker or the hub (the session bounds its queue).
    func deliver(_ message: WebSocketMessage) {
        // As `onLoop`, spelled out: no closure to allocate on the per-message path.
        if eventLoop.inEventLoop {
            send(message)
        } else {
            eventLoop.execute { [self] in self.send(message) }
        }
    }

    private func send(_ message: WebSocketMessage) {
        if session?.sendUnlessFull(message) == false { pool.countOverflow() }
    }

    /// What a link (or the hub) hands this connection runs on the connection's loop: at once
    /// when the caller is already there — a link on the same loop, the usual case — and as a
    /// task otherwise. A task per message cost an allocation and a queue round trip on the
    /// busiest path of a worker route. Every frame about a connection goes through here (or
    /// the same two branches, spelled out), so they keep their order either way: a `send`
    /// right behind an `accept` in the same read must not overtake the upgrade.
    private func onLoop(_ body: @escaping @Sendable () -> Void) {
        if eventLoop.inEventLoop {
            body()
        } else {
            eventLoop.execute(body)
        }
    }
}

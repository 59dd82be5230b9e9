import GatewayCore
import GatewayHub
import GatewayWebSocket
import NIOCore
import NIOWebSocket
import WorkerProtocol

/// One client connection of a worker route: its session's application, a hub subscriber, and
/// the driver of its `WorkerConnectionState` (which decides; this type writes, schedules and
/// closes).
///
/// Everything mutable sits in a `NIOLoopBoundBox` on the client's event loop, so the compiler
/// and the box's check, not a comment, keep it there. Calls from elsewhere (a link on another
/// loop, the hub, the pool) hop to the loop first; from the loop itself they run at once, which
/// keeps the per-message path free of tasks and allocations, and keeps every frame about one
/// connection in order (a `send` right behind an `accept` in the same read must not overtake
/// the upgrade).
final class WorkerConnection: WebSocketApplication, HubSubscriber, Sendable {
    /// The loop-bound part.
    private struct Inner {
        var state: WorkerConnectionState
        var session: WebSocketSessionHandler?
        var verdict: ((UpgradeVerdict) -> Void)?
        var verdictTimer: Scheduled<Void>?
        var instanceTimer: Scheduled<Void>?
        /// The offset of the last publication sent, per topic with history: one at or below it
        /// was sent already (from the history, by a `resume`) and is dropped.
        var positions: [String: UInt64] = [:]
        /// Live publications that arrived while a `resume` read the topic's history, in order.
        var recovering: [String: [(UInt64, WebSocketMessage)]] = [:]
        /// Identity changes a worker sent before the upgrade completed (with its `accept`),
        /// made once the connection is listed.
        var pendingIdentity: [(user: String?, add: [String], remove: [String])] = []
    }

    let id: UInt64
    let eventLoop: any EventLoop
    private let pool: WorkerPool
    private let inner: NIOLoopBoundBox<Inner>

    /// Made on `eventLoop` (the route's `prepare`).
    init(
        id: UInt64,
        eventLoop: any EventLoop,
        fields: [(String, String)],
        verdictRequired: Bool,
        wakeQueueBytes: Int,
        pool: WorkerPool
    ) {
        self.id = id
        self.eventLoop = eventLoop
        self.pool = pool
        let state = WorkerConnectionState(
            connection: id,
            fields: fields,
            verdictRequired: verdictRequired,
            wakeQueueBytes: wakeQueueBytes
        )
        self.inner = .makeBoxSendingValue(Inner(state: state), eventLoop: eventLoop)
    }

    var subscriberID: UInt64 { id }

    // MARK: Authorization (before the upgrade)

    /// Waits for the worker's accept or reject; 503 after `timeout`.
    func awaitVerdict(timeout: TimeAmount, completion: @escaping (UpgradeVerdict) -> Void) {
        inner.value.verdict = completion
        perform(inner.value.state.awaitVerdict(timeout: timeout))
    }

    // MARK: WebSocketApplication (on the event loop)

    func sessionDidOpen(_ session: WebSocketSessionHandler) {
        inner.value.session = session
        let pending = inner.value.pendingIdentity
        inner.value.pendingIdentity = []
        for change in pending { applyIdentity(user: change.user, add: change.add, remove: change.remove) }
        perform(inner.value.state.sessionOpened())
    }

    /// The worker's `identify`.
    func identify(user: String?, add: [String], remove: [String]) {
        onLoop { connection in
            if connection.inner.value.session == nil {
                connection.inner.value.pendingIdentity.append((user, add, remove))
            } else {
                connection.applyIdentity(user: user, add: add, remove: remove)
            }
        }
    }

    private func applyIdentity(user: String?, add: [String], remove: [String]) {
        guard let directory = pool.directory, let entry = directory.entry(id) else { return }
        directory.setIdentity(of: entry) { identity in
            if let user { identity.user = user.isEmpty ? nil : user }
            identity.tags.formUnion(add)
            identity.tags.subtract(remove)
        }
    }

    func session(_ session: WebSocketSessionHandler, didReceive message: WebSocketMessage) {
        if let responder = pool.autoResponder, let response = responder.response(to: message) {
            // Answered here, awake or asleep: no worker sees it.
            if !session.sendUnlessFull(response) { pool.countOverflow() }
            pool.countAutoResponse()
            return
        }
        switch inner.value.state.received(message) {
        case .forward(let link, let pauseAfter):
            link.write(.message(connection: id, kind: .init(message.kind), payload: message.data))
            if pauseAfter { session.pauseReading() }
        case .hold(let pause):
            if pause { session.pauseReading() }
        case .wake(let pause):
            if pause { session.pauseReading() }
            pool.attach(self, wake: true)
        case .refuse(let reason):
            session.close(code: WebSocketErrorCode.messageTooLarge, reason: reason)
        case .ignore:
            break
        }
    }

    func sessionDidClose(_ session: WebSocketSessionHandler, code: WebSocketErrorCode?) {
        perform(inner.value.state.finish(code: code, reason: session.closeReason))
    }

    func upgradeAbandoned() {
        perform(inner.value.state.finish(code: nil, reason: ""))
    }

    // MARK: From the pool and the link (any thread)

    /// The pool pinned this connection to `link`.
    func attach(to link: WorkerLink) {
        onLoop { $0.perform($0.inner.value.state.attached(to: link, now: .now())) }
    }

    /// No instance is live: one must come within `timeout`.
    func waitForInstance(timeout: TimeAmount) {
        onLoop { $0.perform($0.inner.value.state.noInstance(timeout: timeout, now: .now())) }
    }

    /// Its link is gone; the pool looks for another instance.
    func orphan(from link: WorkerLink) {
        onLoop { $0.perform($0.inner.value.state.orphaned(from: link, now: .now())) }
    }

    /// The route hibernates and nothing needs a worker: the connection stays without one.
    func hibernate() {
        onLoop { $0.perform($0.inner.value.state.hibernated()) }
    }

    /// Its instance is stopping or being replaced: the connection leaves `link`.
    func suspend(from link: WorkerLink) {
        onLoop { connection in
            guard connection.inner.value.state.link === link else { return }
            connection.perform(connection.inner.value.state.suspend())
        }
    }

    /// The worker's `release`.
    func releaseArrived(from link: WorkerLink) {
        onLoop { $0.perform($0.inner.value.state.releaseArrived(from: link)) }
    }

    /// The worker's `attach`.
    func setAttachment(_ bytes: [UInt8], from link: WorkerLink) {
        onLoop { $0.inner.value.state.attachmentSet(bytes, from: link) }
    }

    /// The link the pool chose was gone by the time the `open` reached it.
    func linkWentAway(_ link: WorkerLink) {
        pool.reattach(self, after: link)
    }

    func verdictArrived(accepted: Bool, status: UInt16, reason: String) {
        onLoop { $0.perform($0.inner.value.state.verdictArrived(accepted: accepted, status: status, reason: reason)) }
    }

    func closeRequested(code: UInt16, reason: String) {
        onLoop { $0.perform($0.inner.value.state.closeRequested(code: code, reason: reason)) }
    }

    func creditReturned(messages: UInt32, bytes: UInt32, from link: WorkerLink) {
        // Spelled out rather than `onLoop`: no closure on the per-message path.
        if eventLoop.inEventLoop {
            perform(inner.value.state.creditReturned(messages: messages, bytes: bytes, from: link))
        } else {
            eventLoop.execute { self.creditReturned(messages: messages, bytes: bytes, from: link) }
        }
    }

    /// A message for the client, from its worker or the hub (the session bounds its queue).
    func deliver(_ message: WebSocketMessage) {
        if eventLoop.inEventLoop {
            switch inner.value.state.delivering(message, limit: pool.route.limits.sendQueueBytes) {
            case .send:
                if inner.value.session?.sendUnlessFull(message) == false { pool.countOverflow() }
            case .hold, .drop(overflow: false):
                break
            case .drop(overflow: true):
                pool.countDroppedBeforeOpen()
            }
        } else {
            eventLoop.execute { self.deliver(message) }
        }
    }

    // MARK: Topic history (the worker's `resume`)

    var deliveryLoop: (any EventLoop)? { eventLoop }

    /// A publication on a topic with history, on this connection's loop: held while a `resume`
    /// of the topic reads its history, dropped when this connection was sent it (or a later
    /// one) already.
    func deliver(_ message: WebSocketMessage, topic: String, offset: UInt64) {
        if inner.value.recovering[topic] != nil {
            inner.value.recovering[topic]!.append((offset, message))
        } else {
            send(message, topic: topic, offset: offset)
        }
    }

    private func send(_ message: WebSocketMessage, topic: String, offset: UInt64) {
        if let last = inner.value.positions[topic], offset <= last { return }
        inner.value.positions[topic] = offset
        deliver(message)
    }

    /// The worker's `resume`: subscribes to `topic` and sends the client what it missed after
    /// `since` (an empty epoch: nothing, live ones from now), then live ones, with no gap and no
    /// duplicate at the seam (the hub route's rule); `subscribed` tells the worker, on `link`.
    func resume(_ topic: String, since: WorkerFrame.Position, answeringOn link: WorkerLink) {
        onLoop { $0.startResume(topic, since: since, link: link) }
    }

    private func startResume(_ topic: String, since: WorkerFrame.Position, link: WorkerLink) {
        let hub = pool.hub
        hub.subscribe(self, to: topic)
        guard let history = hub.history(for: topic) else {
            let none = WorkerFrame.Position(offset: 0, epoch: "")
            link.write(.subscribed(.init(connection: id, status: .noHistory, position: none, missed: 0, topic: topic)))
            return
        }
        let wanted = since.epoch.isEmpty ? nil : StreamPosition(offset: since.offset, epoch: since.epoch)
        inner.value.recovering[topic] = inner.value.recovering[topic] ?? []
        history.recover(topic, since: wanted, on: eventLoop).hop(to: eventLoop).whenComplete { result in
            let waiting = self.inner.value.recovering.removeValue(forKey: topic) ?? []
            let answer: WorkerFrame.Subscribed
            switch result {
            case .success(let recovery):
                self.inner.value.positions[topic] = recovery.position.offset
                for entry in recovery.entries { self.deliver(Hub.rawForm(of: entry)) }
                answer = .init(
                    connection: self.id,
                    status: recovery.recovered == true ? .recovered : .notRecovered,
                    position: .init(offset: recovery.position.offset, epoch: recovery.position.epoch),
                    missed: UInt32(clamping: recovery.entries.count),
                    topic: topic
                )
            case .failure:
                self.inner.value.positions[topic] = nil
                let none = WorkerFrame.Position(offset: 0, epoch: "")
                answer = .init(connection: self.id, status: .unavailable, position: none, missed: 0, topic: topic)
            }
            for (offset, message) in waiting { self.send(message, topic: topic, offset: offset) }
            link.write(.subscribed(answer))
        }
    }

    // MARK: Doing what the state says

    private func perform(_ actions: [WorkerConnectionState.Action]) {
        for action in actions { perform(action) }
    }

    private func perform(_ action: WorkerConnectionState.Action) {
        switch action {
        case .sendOpen(let link, let open):
            link.open(self, with: open)
        case .forward(let message, let link):
            link.write(.message(connection: id, kind: .init(message.kind), payload: message.data))
        case .sendClosed(let link, let code, let reason):
            link.close(id, code: code, reason: reason)
        case .pauseReading:
            inner.value.session?.pauseReading()
        case .resumeReading:
            inner.value.session?.resumeReading()
        case .closeClient(let code, let reason):
            inner.value.session?.close(code: code, reason: reason)
        case .acceptUpgrade:
            giveVerdict(.accept(self))
        case .refuseUpgrade(let status, let message):
            giveVerdict(.refuse(status: status, message: message))
        case .startTimer(let timer, let timeout):
            let scheduled = eventLoop.assumeIsolated().scheduleTask(in: timeout) {
                self.perform(self.inner.value.state.timerFired(timer))
            }
            switch timer {
            case .verdict:
                inner.value.verdictTimer?.cancel()
                inner.value.verdictTimer = scheduled
            case .instance:
                inner.value.instanceTimer?.cancel()
                inner.value.instanceTimer = scheduled
            }
        case .cancelTimer(.verdict):
            inner.value.verdictTimer?.cancel()
            inner.value.verdictTimer = nil
        case .cancelTimer(.instance):
            inner.value.instanceTimer?.cancel()
            inner.value.instanceTimer = nil
        case .countLost(let messages):
            pool.countLost(messages, connection: id)
        case .requestInstance(let wake):
            pool.attach(self, wake: wake)
        case .sendSuspend(let link):
            link.write(.suspend(connection: id))
        case .released(let link):
            link.release(id)
            pool.released(self, from: link)
        case .detach:
            inner.value.session = nil
            pool.detach(self)
        case .deliverEarly(let messages):
            for message in messages where inner.value.session?.sendUnlessFull(message) == false {
                pool.countOverflow()
            }
        }
    }

    private func giveVerdict(_ answer: UpgradeVerdict) {
        let completion = inner.value.verdict
        inner.value.verdict = nil
        completion?(answer)
    }

    private func onLoop(_ body: @escaping @Sendable (WorkerConnection) -> Void) {
        eventLoop.runOnLoop { body(self) }
    }
}

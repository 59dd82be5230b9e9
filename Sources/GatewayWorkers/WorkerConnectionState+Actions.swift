import GatewayWebSocket
import NIOCore
import NIOWebSocket
import WorkerProtocol

/// What a connection's events ask of `WorkerConnection`: the timers, the actions, and the
/// answers on the per-message paths (which allocate no array).
extension WorkerConnectionState {
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
        /// Asks the pool for an instance; `wake`: something needs a worker now (a message, a
        /// verdict), so a hibernated route starts one, rather than leaving the connection
        /// unattached.
        case requestInstance(wake: Bool)
        /// Tells the worker (version 2) that the connection leaves its instance.
        case sendSuspend(WorkerLink)
        /// The instance let the connection go: the link forgets it without a `closed`, and the
        /// pool unpins it.
        case released(WorkerLink)
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
        /// Keep it; with `pause`, reads pause until credit or an instance comes.
        case hold(pause: Bool)
        /// Keep it, and ask the pool for an instance: nothing holds the connection.
        case wake(pause: Bool)
        /// The attached worker cannot take a message this big: the client is closed with 1009.
        case refuse(reason: String)
        case ignore
    }
}

import GatewayCore
import NIOCore
import WorkerProtocol

/// The gateway's connection to one worker instance, after a successful hello, and the owner of
/// the client connections open on it.
///
/// The connection table lives on the link's event loop and nothing else touches it: a reply
/// from the worker (`send`, `credit`, `close`…) finds its connection here, without a lock and
/// without asking the pool. The pool only chooses a link for a connection (`WorkerPool.attach`)
/// and keeps the per-instance counts it chooses by. A pool opens one link per event loop to
/// each instance, and a connection goes to the link on its own loop, so a reply is handled on
/// the loop of the client it is for: no thread hop, and one flush per tick for all of them.
final class WorkerLink: Sendable {
    let id: UInt64
    /// The instance's index in its pool, and its name (for logs).
    let instance: Int
    let instanceName: String
    let channel: any Channel
    /// Per-connection message bytes the worker takes before returning credit.
    let initialCredit: Int
    /// Largest frame (its length field) the worker accepts.
    let maxFrameBytes: Int
    /// The protocol version the worker chose: from 2 it takes `suspend` and sends `release`
    /// and `attach`.
    let version: UInt16
    private let writer: WorkerFrameWriter
    /// The link's loop's part: the connections open on it, and whether it is gone.
    private struct Table {
        var connections: [UInt64: WorkerConnection] = [:]
        var lost = false
        /// When a frame last came from the worker, or a connection was opened on it: what
        /// `worker.idle_stop` measures.
        var lastActivity = NIODeadline.now()
    }
    private let table: NIOLoopBoundBox<Table>

    var eventLoop: any EventLoop { channel.eventLoop }

    /// Made on the link's event loop (by its handler, once the hello is done).
    init(
        id: UInt64,
        instance: Int,
        instanceName: String,
        channel: any Channel,
        initialCredit: Int,
        maxFrameBytes: Int,
        version: UInt16 = 1
    ) {
        self.id = id
        self.version = version
        self.instance = instance
        self.instanceName = instanceName
        self.channel = channel
        self.initialCredit = initialCredit
        self.maxFrameBytes = maxFrameBytes
        self.writer = WorkerFrameWriter(channel: channel)
        self.table = .makeBoxSendingValue(Table(), eventLoop: channel.eventLoop)
    }

    /// The largest message payload a `message` frame to this worker may carry.
    var maxMessageBytes: Int { maxFrameBytes - WorkerFrameCodec.messageOverhead }

    /// Queues `frame`; it goes out with the link's flush at the end of the tick. Frames written
    /// from one thread keep their order, whichever loop that is.
    func write(_ frame: WorkerFrame) {
        writer.write(frame)
    }

    /// Enters `connection` in the table and sends its `open`, on the link's loop: a reply to
    /// the `open` always finds it. A link that went away meanwhile (the pool chose it just
    /// before) hands the connection back, to be attached elsewhere.
    func open(_ connection: WorkerConnection, with frame: WorkerFrame.Open) {
        channel.eventLoop.runOnLoop {
            guard !self.table.value.lost else { return connection.linkWentAway(self) }
            self.table.value.connections[frame.connection] = connection
            self.table.value.lastActivity = .now()
            self.writer.write(.open(frame))
        }
    }

    /// Takes the connection out of the table and tells the worker it is gone.
    func close(_ id: UInt64, code: UInt16, reason: String) {
        channel.eventLoop.runOnLoop {
            guard self.table.value.connections.removeValue(forKey: id) != nil else { return }
            self.writer.write(.closed(connection: id, code: code, reason: reason))
        }
    }

    /// Takes the connection out of the table without a `closed`: the worker rejected it, or
    /// released it.
    func forget(_ id: UInt64) {
        table.value.connections[id] = nil
    }

    /// `forget`, from any thread.
    func release(_ id: UInt64) {
        channel.eventLoop.runOnLoop { self.forget(id) }
    }

    /// A frame came from the worker (the link's loop only).
    func touch() {
        table.value.lastActivity = .now()
    }

    /// When the worker last sent a frame or was given a connection (the link's loop only).
    var lastActivity: NIODeadline { table.value.lastActivity }

    /// Asks every connection open on this link to leave it (the link's loop only): the
    /// instance is stopping or being replaced.
    func suspendAll() {
        for connection in table.value.connections.values { connection.suspend(from: self) }
    }

    /// The connection `id` if it is open on this link (the link's loop only).
    func connection(_ id: UInt64) -> WorkerConnection? {
        table.value.connections[id]
    }

    /// Empties the table for good (the link is gone), returning what it held (the link's loop
    /// only).
    func removeAll() -> [WorkerConnection] {
        let connections = Array(table.value.connections.values)
        table.value = Table(lost: true)
        return connections
    }
}

import NIOCore

/// One frame of the worker protocol (docs/worker-protocol.md), either direction.
///
/// On the wire: `u32 length` (big-endian, the bytes after it), `u8 type`, then the body. Strings
/// are UTF-8; `str16` is a `u16` length and the bytes. Payloads are carried as raw bytes, never
/// re-encoded.
public enum WorkerFrame: Sendable, Equatable {
    // Gateway → worker
    case hello(Hello)
    case open(Open)
    case message(connection: UInt64, kind: MessageKind, payload: ByteBuffer)
    case closed(connection: UInt64, code: UInt16, reason: String)
    case subscribed(Subscribed)
    case recorded(request: UInt32, status: RecordStatus, position: Position)
    /// Version 2: the connection leaves this instance while its client stays connected (the
    /// instance stops for idleness, or a deploy moves it); the worker answers `release`.
    case suspend(connection: UInt64)
    // Worker → gateway
    case helloAck(HelloAck)
    case accept(connection: UInt64)
    case reject(connection: UInt64, status: UInt16, reason: String)
    case send(connection: UInt64, kind: MessageKind, payload: ByteBuffer)
    case close(connection: UInt64, code: UInt16, reason: String)
    case subscribe(connection: UInt64, topic: String)
    case unsubscribe(connection: UInt64, topic: String)
    case publish(topic: String, kind: MessageKind, payload: ByteBuffer)
    case credit(connection: UInt64, messages: UInt32, bytes: UInt32)
    case resume(connection: UInt64, since: Position, topic: String)
    case record(request: UInt32, topic: String, kind: MessageKind, payload: ByteBuffer)
    /// Version 2: the worker is done with a suspended connection (its last frame about it).
    case release(connection: UInt64)
    /// Version 2: the blob the gateway keeps for the connection and hands back in the `open`
    /// of the next instance that takes it (`:attachment`); empty clears it.
    case attach(connection: UInt64, data: ByteBuffer)
    /// Version 2: the connection's user id and tags (docs/http-backend.md, users and tags): set
    /// the user when `user` is non-nil (an empty one clears it), then add and remove tags. Sent
    /// before `accept`, it takes effect with the upgrade.
    case identify(connection: UInt64, user: String?, add: [String], remove: [String])
    /// Version 2: a message to every connection of a user or with a tag, on every node.
    case sendTo(target: Addressee, kind: MessageKind, payload: ByteBuffer)
    /// Version 2: closes every connection of a user or with a tag, on every node.
    case closeTo(target: Addressee, code: UInt16, reason: String)

    /// Whom `sendTo` and `closeTo` address.
    public enum Addressee: Sendable, Equatable {
        case user(String)
        case tag(String)
    }

    /// The newest protocol version this package speaks.
    public static let currentVersion: UInt16 = 2

    /// A topic stream's position (docs/hub-protocol.md, Resume): offset 0 and an empty epoch
    /// stand for none.
    public struct Position: Sendable, Equatable {
        public var offset: UInt64
        public var epoch: String
        public init(offset: UInt64, epoch: String) {
            self.offset = offset
            self.epoch = epoch
        }
    }

    /// The answer to `resume`.
    public struct Subscribed: Sendable, Equatable {
        public enum Status: UInt8, Sendable {
            /// Every publication after the position followed (or will, before any live one).
            case recovered = 1
            /// The history does not reach back that far, or the epoch is another: only live
            /// publications follow; `position` is where the stream stands.
            case notRecovered = 2
            /// The topic keeps no history: subscribed to live publications.
            case noHistory = 3
            /// The history could not be read (a cluster without Redis): live publications only.
            case unavailable = 4
        }
        public var connection: UInt64
        public var status: Status
        public var position: Position
        /// How many publications the client was sent from the history.
        public var missed: UInt32
        public var topic: String
        public init(connection: UInt64, status: Status, position: Position, missed: UInt32, topic: String) {
            self.connection = connection
            self.status = status
            self.position = position
            self.missed = missed
            self.topic = topic
        }
    }

    /// The answer to `record`.
    public enum RecordStatus: UInt8, Sendable {
        /// Recorded in the topic's history at `position`, and delivered.
        case recorded = 1
        /// Delivered; the topic keeps no history (`position` is empty).
        case published = 2
        /// Not published: the history could not record it (a cluster without Redis).
        case failed = 3
    }

    public enum MessageKind: UInt8, Sendable {
        case text = 1
        case binary = 2
    }

    /// The first frame on a link, sent by the gateway.
    public struct Hello: Sendable, Equatable {
        public static let magic: UInt32 = 0x5753_4757  // "WSGW"
        public var minVersion: UInt16
        public var maxVersion: UInt16
        /// Largest frame (length field) the gateway accepts.
        public var maxFrameBytes: UInt32
        public var gateway: String
        public init(
            minVersion: UInt16 = 1,
            maxVersion: UInt16 = WorkerFrame.currentVersion,
            maxFrameBytes: UInt32,
            gateway: String
        ) {
            self.minVersion = minVersion
            self.maxVersion = maxVersion
            self.maxFrameBytes = maxFrameBytes
            self.gateway = gateway
        }
    }

    /// The worker's answer to `hello`.
    public struct HelloAck: Sendable, Equatable {
        public var version: UInt16
        /// Largest frame (length field) the worker accepts.
        public var maxFrameBytes: UInt32
        /// Message bytes the gateway may send for each connection before the worker returns
        /// credit: the worker's read buffer per connection.
        public var initialCredit: UInt32
        public var worker: String
        public init(version: UInt16 = 1, maxFrameBytes: UInt32, initialCredit: UInt32, worker: String) {
            self.version = version
            self.maxFrameBytes = maxFrameBytes
            self.initialCredit = initialCredit
            self.worker = worker
        }
    }

    /// A new (or resumed) client connection.
    public struct Open: Sendable, Equatable {
        public var connection: UInt64
        /// The connection was open on an instance that went away; the client did not reconnect.
        public var resumed: Bool
        /// The gateway waits for `accept` or `reject` before answering the client's upgrade.
        public var verdictRequired: Bool
        /// The connection's own fields (`OpenField`, names starting with `:`) and selected
        /// request headers by lower-case name, in order.
        public var fields: [(String, String)]
        /// Version 2: the attachment a worker set (`attach`), handed to the instance that takes
        /// the connection next (flag bit 2; the bytes after the fields).
        public var attachment: ByteBuffer?

        public init(
            connection: UInt64,
            resumed: Bool = false,
            verdictRequired: Bool = false,
            fields: [(String, String)],
            attachment: ByteBuffer? = nil
        ) {
            self.connection = connection
            self.resumed = resumed
            self.verdictRequired = verdictRequired
            self.fields = fields
            self.attachment = attachment
        }

        public subscript(field: String) -> String? {
            fields.first { $0.0 == field }?.1
        }

        public static func == (a: Open, b: Open) -> Bool {
            a.connection == b.connection && a.resumed == b.resumed && a.verdictRequired == b.verdictRequired
                && a.fields.elementsEqual(b.fields, by: { $0.0 == $1.0 && $0.1 == $1.1 })
                && a.attachment == b.attachment
        }
    }

    public enum FrameType: UInt8, Sendable {
        case hello = 0x01
        case helloAck = 0x02
        case open = 0x10
        case message = 0x11
        case closed = 0x12
        case subscribed = 0x13
        case recorded = 0x14
        case suspend = 0x15
        case accept = 0x20
        case reject = 0x21
        case send = 0x22
        case close = 0x23
        case subscribe = 0x24
        case unsubscribe = 0x25
        case publish = 0x26
        case credit = 0x27
        case resume = 0x28
        case record = 0x29
        case release = 0x2A
        case attach = 0x2B
        case identify = 0x2C
        case sendTo = 0x2D
        case closeTo = 0x2E
    }

    public var type: FrameType {
        switch self {
        case .hello: .hello
        case .helloAck: .helloAck
        case .open: .open
        case .message: .message
        case .closed: .closed
        case .accept: .accept
        case .reject: .reject
        case .send: .send
        case .close: .close
        case .subscribe: .subscribe
        case .unsubscribe: .unsubscribe
        case .publish: .publish
        case .credit: .credit
        case .subscribed: .subscribed
        case .recorded: .recorded
        case .resume: .resume
        case .record: .record
        case .suspend: .suspend
        case .release: .release
        case .attach: .attach
        case .identify: .identify
        case .sendTo: .sendTo
        case .closeTo: .closeTo
        }
    }
}

import NIOCore
import NIOWebSocket

/// A `worker` route's pool: processes the gateway starts and supervises, or one socket of a
/// worker someone else runs.
public struct WorkerSettings: Sendable, Equatable {
    public enum Source: Sendable, Equatable {
        /// The gateway starts `instances` copies of `command`, each with its own socket path in
        /// `WSSGATE_WORKER_SOCKET`, and restarts them when they exit.
        case supervised(command: String, arguments: [String], environment: [String], instances: Int)
        /// A worker already listening on this Unix socket.
        case external(socket: String)
    }

    public var source: Source
    /// Wait for the worker's accept/reject of each connection before answering the upgrade.
    public var authorize: Bool
    /// No verdict within this long: 503.
    public var authorizeTimeout: TimeAmount
    /// How long a connection whose instance died may wait for a live one before it is closed
    /// with 1013 (Try Again Later).
    public var resumeTimeout: TimeAmount
    /// Request headers passed to the worker in `open` (lower case).
    public var forwardHeaders: [String]
    /// User ids a worker socket's owner may have (checked with SO_PEERCRED); empty: the
    /// gateway's own user only.
    public var allowedUIDs: [Int]
    /// Where supervised workers' sockets are made; empty: a private directory under the
    /// system's temporary directory.
    public var socketDirectory: String
    /// On shutdown, SIGTERM, then SIGKILL after this long.
    public var stopTimeout: TimeAmount
    /// Supervised instances kept running however idle; nil: all of them (no hibernation).
    /// Below `instances`, the others run only while there is work (docs/worker-protocol.md,
    /// Hibernation).
    public var minInstances: Int?
    /// An instance above `minInstances` that has exchanged nothing with the gateway for this
    /// long is stopped; its connections stay, hibernated.
    public var idleStop: TimeAmount
    /// Largest attachment a worker may set on a connection (kept by the gateway across
    /// hibernation and moves).
    public var attachmentBytes: Int
    /// Message bytes read from a client while no instance holds its connection (waking one):
    /// beyond them reads pause until an instance takes the connection.
    public var wakeQueueBytes: Int
    /// Text messages the gateway answers itself, without a worker (even a sleeping one).
    public var autoResponses: [AutoResponse]
    /// What a reload that changes the route's command does to its connections.
    public var onChange: ChangePolicy

    /// What a reload that changes a supervised route's command, arguments or environment does.
    public enum ChangePolicy: String, Sendable, Equatable, CaseIterable {
        /// A new pool takes new connections; existing ones finish on the old pool.
        case finish
        /// A rolling deploy: existing connections move to the new instances (as
        /// `POST /v1/routes/{name}/deploy` does).
        case move
    }

    /// A text message answered by the gateway: a message exactly equal to `request` gets
    /// `response`.
    public struct AutoResponse: Sendable, Equatable {
        public var request: String
        public var response: String
        public init(request: String, response: String) {
            self.request = request
            self.response = response
        }
    }

    /// Supervised instances, or 1 for an external worker.
    public var instanceCount: Int {
        if case .supervised(_, _, _, let instances) = source { instances } else { 1 }
    }

    /// Instances that always run: every one unless `min_instances` says fewer.
    public var alwaysRunning: Int { min(minInstances ?? instanceCount, instanceCount) }

    /// Whether instances may stop while connections stay (min_instances below instances).
    public var hibernates: Bool { alwaysRunning < instanceCount }

    /// The command a supervised pool runs (nil for an external worker).
    public var command: WorkerProgram? {
        guard case .supervised(let command, let arguments, let environment, _) = source else { return nil }
        return WorkerProgram(command: command, arguments: arguments, environment: environment)
    }

    /// Whether a pool built from `self` can become one built from `other` by a rolling deploy:
    /// both supervised with the same instance count, `other` asks for moves, and nothing but
    /// the command, its arguments and environment (and `on_change`) differs.
    public func movable(to other: WorkerSettings) -> Bool {
        guard other.onChange == .move, case .supervised(_, _, _, let before) = source,
            case .supervised(_, _, _, let after) = other.source, before == after
        else { return false }
        var same = other
        same.source = source
        same.onChange = onChange
        return same == self
    }

    public init(
        source: Source,
        authorize: Bool = false,
        authorizeTimeout: TimeAmount = .seconds(5),
        resumeTimeout: TimeAmount = .seconds(10),
        forwardHeaders: [String] = ["origin", "cookie", "authorization", "user-agent"],
        allowedUIDs: [Int] = [],
        socketDirectory: String = "",
        stopTimeout: TimeAmount = .seconds(10),
        minInstances: Int? = nil,
        idleStop: TimeAmount = .minutes(5),
        attachmentBytes: Int = 2048,
        wakeQueueBytes: Int = 65536,
        autoResponses: [AutoResponse] = [],
        onChange: ChangePolicy = .finish
    ) {
        self.onChange = onChange
        self.minInstances = minInstances
        self.idleStop = idleStop
        self.attachmentBytes = attachmentBytes
        self.wakeQueueBytes = wakeQueueBytes
        self.autoResponses = autoResponses
        self.source = source
        self.authorize = authorize
        self.authorizeTimeout = authorizeTimeout
        self.resumeTimeout = resumeTimeout
        self.forwardHeaders = forwardHeaders
        self.allowedUIDs = allowedUIDs
        self.socketDirectory = socketDirectory
        self.stopTimeout = stopTimeout
    }
}

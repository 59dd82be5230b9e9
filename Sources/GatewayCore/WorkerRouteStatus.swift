/// A worker route as the admin API shows it: its instances, their processes and load, and the
/// last deploy — so a rolling deploy can be watched while it runs.
public struct WorkerRouteStatus: Sendable, Equatable {
    /// One instance of the pool.
    public struct Instance: Sendable, Equatable {
        public enum State: String, Sendable {
            /// Wanted, and linked on at least one event loop.
            case running
            /// Wanted, not linked yet (starting or restarting).
            case starting
            /// Stopped for idleness (`min_instances`); started again when a connection needs it.
            case asleep
            /// Of a generation a deploy is replacing: its connections are leaving.
            case leaving
        }
        public var name: String
        public var pid: Int32?
        public var state: State
        /// Connections pinned to it.
        public var connections: Int
        public init(name: String, pid: Int32?, state: State, connections: Int) {
            self.name = name
            self.pid = pid
            self.state = state
            self.connections = connections
        }
    }

    /// A rolling deploy: new instances start, every connection moves to them, the old stop.
    public struct Deployment: Sendable, Equatable {
        public enum Phase: String, Sendable {
            /// The new instances are starting; the old ones serve everything.
            case starting
            /// New connections go to the new instances; the old ones release theirs.
            case moving
            /// The old instances are being stopped.
            case stopping
            case done
            /// The new instances did not link in time: they were stopped, the old ones serve on.
            case failed
        }
        /// Counts deploys of this route since start, from 1.
        public var number: Int
        public var phase: Phase
        public var command: String
        public var arguments: [String]
        /// Instance names before and after.
        public var from: [String]
        public var to: [String]
        /// Connections on the old instances when the move began.
        public var moving: Int
        /// Of those, still on an old instance.
        public var remaining: Int
        /// Connections an old instance did not release within `stop_timeout`: their link was
        /// closed and they resumed on a new instance like after an instance death.
        public var forced: Int
        /// Milliseconds since the Unix epoch.
        public var startedAt: Int64
        public var finishedAt: Int64?
        public var error: String?

        public init(
            number: Int,
            phase: Phase,
            command: String,
            arguments: [String],
            from: [String],
            to: [String],
            startedAt: Int64
        ) {
            self.number = number
            self.phase = phase
            self.command = command
            self.arguments = arguments
            self.from = from
            self.to = to
            self.moving = 0
            self.remaining = 0
            self.forced = 0
            self.startedAt = startedAt
            self.finishedAt = nil
            self.error = nil
        }

        /// Still running (a second deploy of the route is refused meanwhile).
        public var inProgress: Bool { phase == .starting || phase == .moving || phase == .stopping }
    }

    public var route: String
    /// The supervised command of the instances in force; nil for an external worker.
    public var command: String?
    public var arguments: [String]
    public var instances: [Instance]
    public var connections: Int
    public var deployment: Deployment?

    public init(
        route: String,
        command: String?,
        arguments: [String],
        instances: [Instance],
        connections: Int,
        deployment: Deployment?
    ) {
        self.route = route
        self.command = command
        self.arguments = arguments
        self.instances = instances
        self.connections = connections
        self.deployment = deployment
    }
}

/// What the admin API may ask of the routes' services: the worker routes' state, and a rolling
/// deploy. Kept here so the admin API need not know how worker pools work.
public protocol RouteAdministration: Sendable {
    /// The worker routes in force, by name.
    var workerRoutes: [WorkerRouteStatus] { get }
    /// Starts a rolling deploy of a worker route: `command` replaces the route's command,
    /// arguments and environment (nil: the same ones again, e.g. after the binary was replaced).
    /// Answers the route's state with the deploy started.
    func deploy(route: String, command: WorkerProgram?) throws(RouteAdministrationError) -> WorkerRouteStatus
}

/// What a supervised worker runs.
public struct WorkerProgram: Sendable, Equatable {
    public var command: String
    public var arguments: [String]
    /// `NAME=value` entries added to the instances' environment.
    public var environment: [String]
    public init(command: String, arguments: [String] = [], environment: [String] = []) {
        self.command = command
        self.arguments = arguments
        self.environment = environment
    }

    /// What differs from another program, as a reload's log line names it: `command`, `args`,
    /// `env` (the keys of a worker route's section).
    public func differences(from other: WorkerProgram) -> [String] {
        var keys: [String] = []
        if command != other.command { keys.append("command") }
        if arguments != other.arguments { keys.append("args") }
        if environment != other.environment { keys.append("env") }
        return keys
    }
}

/// Why a route request was refused.
public struct RouteAdministrationError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// No worker route of that name is in force.
        case notFound = "not_found"
        /// The route cannot be deployed now: an external worker, a deploy in progress, or a
        /// pool that is being replaced or stopped.
        case conflict
    }
    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { message }
}

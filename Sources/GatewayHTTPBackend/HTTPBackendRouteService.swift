import GatewayCore
import GatewayHub
import GatewayMetrics
import GatewayWebSocket
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOWebSocket

/// Serves an `http` route: every connection's events go to the app as HTTP requests
/// (docs/http-backend.md), through one pool of keep-alive connections per route.
public final class HTTPBackendRouteService: RouteService {
    let routeName: String
    let settings: HTTPBackendSettings
    let client: HTTPBackendClient
    let hub: Hub
    let identities: ConnectionIdentities
    let remote: (any RemoteConnections)?
    let metrics: HTTPBackendMetrics
    private let logger: Logger
    /// Connections still owing the app events, and whether a reload retired the route: a
    /// retired route keeps its pool (keep-alive) for those, and closes it after the last.
    private struct Life {
        var connections = 0
        var retired = false
        /// Waiting for the last connection's last event (`eventsPosted`).
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let life = NIOLockedValueBox(Life())
    /// Opens when a reload retires the route: its probes of the app end.
    private let retiredSignal = Latch()
    private let group: any EventLoopGroup

    public init(
        route: RouteConfiguration,
        settings: HTTPBackendSettings,
        identities: ConnectionIdentities,
        group: any EventLoopGroup,
        logger: Logger,
        remote: (any RemoteConnections)?
    ) {
        self.routeName = route.name
        self.settings = settings
        self.group = group
        var logger = logger
        logger[metadataKey: "route"] = .string(route.name)
        let url = settings.urlText
        self.client = HTTPBackendClient(settings: settings, group: group) { [logger] reachable, error in
            if reachable {
                logger.info("app reachable", metadata: ["url": .string(url)])
            } else {
                logger.warning(
                    "app unreachable: the route's new clients get 503 until it is back",
                    metadata: ["url": .string(url), "error": .string(error ?? "")]
                )
            }
        }
        self.hub = identities.hub
        self.identities = identities
        self.remote = remote
        self.metrics = HTTPBackendMetrics(route: route.name)
        self.logger = logger
    }

    public func prepare(
        _ request: UpgradeRequest,
        eventLoop: any EventLoop,
        completion: @escaping (UpgradeVerdict) -> Void
    ) {
        let wanted = Set(settings.forwardHeaders)
        let offered = request.headers.filter { $0.0 == "sec-websocket-protocol" }.flatMap {
            $0.1.split(separator: ",").map { String($0.filter { $0 != " " && $0 != "\t" }) }
        }
        let connection = HTTPBackendConnection(
            id: request.connectionID,
            eventLoop: eventLoop,
            context: .init(
                target: request.target,
                peer: request.peer,
                forwarded: request.headers.filter { wanted.contains($0.0) },
                claims: request.claims,
                subject: request.subject,
                offered: offered.filter { !$0.isEmpty }
            ),
            service: self
        )
        life.withLockedValue { $0.connections += 1 }
        connection.open(completion: completion)
    }

    /// A connection will post nothing more (refused, or its close event is done).
    func connectionEnded() {
        let (last, waiters) = life.withLockedValue { life -> (Bool, [CheckedContinuation<Void, Never>]) in
            life.connections -= 1
            guard life.connections == 0 else { return (false, []) }
            defer { life.waiters = [] }
            return (life.retired, life.waiters)
        }
        if last { client.shutDown() }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once no connection owes the app an event. A stopping gateway waits for it after
    /// its drain has closed every client, so each connection's `close` is posted — on a new
    /// connection to the app if need be — before the process exits.
    public func eventsPosted() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let idle = life.withLockedValue { life -> Bool in
                guard life.connections > 0 else { return true }
                life.waiters.append(waiter)
                return false
            }
            if idle { waiter.resume() }
        }
    }

    /// The app is asked per connection; the route itself is always ready.
    public var isReady: Bool { true }

    public var degradation: String? {
        client.reachability.isDown ? "its app at \(settings.urlText) does not accept connections" : nil
    }

    /// Checks the app at start, so an app that is down is in the log and at `/v1/status` before
    /// the first client meets it; then again every two seconds while it is down (while it is up,
    /// the connections the route makes say so), until the route is retired.
    public func watchApp() async {
        while !Task.isCancelled && !isRetired {
            if !client.reachability.isUp { _ = try? await client.probe().get() }
            // Two seconds between probes; a retired route ends at once.
            _ = await retiredSignal.opens(within: .seconds(2), on: group.next())
        }
    }

    private var isRetired: Bool { life.withLockedValue { $0.retired } }

    /// A reload replaced or removed the route: its connections to the app close once the
    /// route's last client connection has told the app it closed.
    public func retire() {
        let idle = life.withLockedValue { life -> Bool in
            life.retired = true
            return life.connections == 0
        }
        retiredSignal.open()
        if idle { client.shutDown() }
    }

    // MARK: Commands for other connections

    func send(_ message: WebSocketMessage, to target: HTTPBackendCommand.Target) {
        switch target {
        case .this: break
        case .connection(let id):
            if let entry = identities.directory.entry(id) {
                _ = identities.directory.send(message, to: entry)
            } else if let remote, remote.isRemote(id) {
                remote.send(message, to: id)
            }
        case .user(let user): identities.send(message, toUser: user)
        case .tag(let tag): identities.send(message, toTag: tag)
        }
    }

    func close(_ target: HTTPBackendCommand.Target, code: UInt16, reason: String) {
        let code = WebSocketErrorCode(code: code)
        switch target {
        case .this: break
        case .connection(let id):
            if let entry = identities.directory.entry(id) {
                _ = identities.directory.close(entry, code: code, reason: reason)
            } else if let remote, remote.isRemote(id) {
                remote.close(id, code: code, reason: reason)
            }
        case .user(let user): identities.close(user: user, code: code, reason: reason)
        case .tag(let tag): identities.close(tag: tag, code: code, reason: reason)
        }
    }

    func log(_ message: Logger.Message, connection: UInt64, error: String) {
        logger.warning(
            message,
            metadata: [
                "route": .string(routeName), "connection": .stringConvertible(connection), "error": .string(error),
            ]
        )
    }
}

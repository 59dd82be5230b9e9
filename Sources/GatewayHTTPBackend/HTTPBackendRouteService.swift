import GatewayCore
import GatewayHub
import GatewayMetrics
import GatewayWebSocket
import Logging
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
        self.client = HTTPBackendClient(settings: settings, group: group)
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
                offered: offered.filter { !$0.isEmpty }
            ),
            service: self
        )
        connection.open(completion: completion)
    }

    /// The app is asked per connection; the route itself is always ready.
    public var isReady: Bool { true }

    /// Closes the idle connections to the app (a reload replaced or removed the route).
    public func retire() { client.shutDown() }

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

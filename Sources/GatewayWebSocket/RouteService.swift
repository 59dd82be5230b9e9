import GatewayCore
import NIOCore

/// What the HTTP side knows about an upgrade it is about to accept, for the route to decide on.
public struct UpgradeRequest: Sendable {
    /// The connection's id for its whole life (access log, worker, hub, admin API).
    public var connectionID: UInt64
    public var route: RouteConfiguration
    /// The request target, path and query.
    public var target: String
    /// Request headers, names in lower case, in order.
    public var headers: [(String, String)]
    public var peer: String
    public var subprotocol: String?
    /// `tlsv13`, `tlsv12` when the listener has TLS (NIOSSL's names).
    public var tlsVersion: String?
    /// The verified token's claims (its payload JSON as sent), on routes with `auth`.
    public var claims: String?
    /// The verified token's `sub`.
    public var subject: String?
    /// The subject of the client's certificate, when it presented one (mutual TLS).
    public var clientSubject: String?

    public init(
        connectionID: UInt64,
        route: RouteConfiguration,
        target: String,
        headers: [(String, String)],
        peer: String,
        subprotocol: String?,
        tlsVersion: String?
    ) {
        self.connectionID = connectionID
        self.route = route
        self.target = target
        self.headers = headers
        self.peer = peer
        self.subprotocol = subprotocol
        self.tlsVersion = tlsVersion
    }
}

/// A route's answer to an upgrade.
public enum UpgradeVerdict {
    /// Upgrade; the session's messages go to this application.
    case accept(any WebSocketApplication)
    /// Upgrade answering the client with this subprotocol (or none) rather than the one the
    /// route's list selected: a `frames` proxy's upstream chose it from the client's offer.
    case acceptAnswering(any WebSocketApplication, subprotocol: String?)
    /// Answer the client with this HTTP status instead of 101.
    case refuse(status: Int, message: String)
    /// Pass the connection through, byte for byte: answer the client with `responseHead` (an
    /// upstream's own 101, verbatim), then `firstFrames` (what the upstream sent right behind
    /// it), and join the two connections. The upstream channel lives on the client's event loop.
    case passthrough(upstream: any Channel, responseHead: ByteBuffer, firstFrames: ByteBuffer)
}

/// Serves one route's connections. Shared by every connection of the route, called from any
/// event loop.
public protocol RouteService: Sendable {
    /// Decides an upgrade. Called on the connection's event loop; `completion` must be called
    /// exactly once, on that same event loop (it may be later: a worker may be asked first).
    /// When the client is gone by the time an `accept` arrives, the HTTP side calls the
    /// application's `upgradeAbandoned()`.
    func prepare(_ request: UpgradeRequest, eventLoop: any EventLoop, completion: @escaping (UpgradeVerdict) -> Void)

    /// Whether the route can serve connections now: the gateway starts accepting once every
    /// route is (or after a bounded wait), and a reload puts a new service in force once it is.
    var isReady: Bool { get }

    /// Whether the route can serve within `timeout` — an event to wait for, so nobody polls
    /// `isReady`; false when the time passes or the task is cancelled first. A service that is
    /// always ready takes the default.
    func ready(within timeout: TimeAmount, on eventLoop: any EventLoop) async -> Bool

    /// What the route is missing while it serves — its upstream or app does not accept
    /// connections, no worker instance is linked — or nil. The gateway is then degraded:
    /// `/readyz` says `degraded` (still 200) and the admin API's `/v1/status` names the route.
    var degradation: String? { get }
}

extension RouteService {
    public var degradation: String? { isReady ? nil : "no instance is linked to serve it" }
    public func ready(within timeout: TimeAmount, on eventLoop: any EventLoop) async -> Bool { true }
}

/// The echo route: every connection gets the same stateless application.
public final class EchoRouteService: RouteService {
    private let application = EchoApplication()
    public init() {}
    public func prepare(
        _ request: UpgradeRequest,
        eventLoop: any EventLoop,
        completion: @escaping (UpgradeVerdict) -> Void
    ) {
        completion(.accept(application))
    }
    public var isReady: Bool { true }
}

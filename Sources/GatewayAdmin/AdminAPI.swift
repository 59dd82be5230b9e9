import GatewayCore
import GatewayHub
import GatewayWebSocket
import NIOCore
import NIOHTTP1
import NIOWebSocket
import PercentEncoding

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One admin request, as the HTTP side read it.
public struct AdminRequest: Sendable {
    public var method: HTTPMethod
    /// The target, query included.
    public var uri: String
    public var headers: HTTPHeaders
    public var body: ByteBuffer

    public init(method: HTTPMethod, uri: String, headers: HTTPHeaders, body: ByteBuffer) {
        self.method = method
        self.uri = uri
        self.headers = headers
        self.body = body
    }
}

/// An admin answer: JSON, but for the Prometheus text at `/metrics` and the console page.
public struct AdminResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: ByteBuffer
}

/// The admin API of docs/admin-api.yaml: publish to hub topics, list, inspect, message and close
/// connections, list topics. Independent of the HTTP plumbing, so every answer (errors too) is
/// made in one place.
public final class AdminAPI: Sendable {
    /// Largest request body: a 1 MiB binary message, base64-encoded, with room to spare.
    public static let maxBodyBytes = 4 << 20
    static let defaultPageSize = 100
    static let maxPageSize = 1000

    let hub: Hub
    let sessions: SessionDirectory
    let token: String?
    /// In a cluster: requests for connections on other nodes go there, and `scope=cluster`
    /// listings and presence cover every node.
    let cluster: (any ClusterAdministration)?
    /// The Prometheus text exposition of every metric (`GET /metrics`).
    let metrics: @Sendable () -> [UInt8]
    /// The certificates the gateway obtains itself (ACME), when any listener has `tls.acme`.
    let certificates: (any CertificateAdministration)?
    /// The worker routes: their instances, and rolling deploys.
    let routes: (any RouteAdministration)?

    /// Readiness as `/readyz` decides it, with the detail public listeners leave out.
    public struct Status: Sendable {
        public var readiness: String
        public var degraded: String?
        public init(readiness: String, degraded: String?) {
            self.readiness = readiness
            self.degraded = degraded
        }
    }
    let status: @Sendable () -> Status

    /// The gateway's shape now: its bound listeners and its routes (`GET /v1/overview`).
    public struct Overview: Sendable {
        public struct Listener: Sendable {
            public var name: String
            public var address: String
            public var tls: Bool
            public init(name: String, address: String, tls: Bool) {
                self.name = name
                self.address = address
                self.tls = tls
            }
        }
        public struct Route: Sendable {
            public var name: String
            public var path: String
            public var kind: String
            public init(name: String, path: String, kind: String) {
                self.name = name
                self.path = path
                self.kind = kind
            }
        }
        public var listeners: [Listener]
        public var routes: [Route]
        public init(listeners: [Listener], routes: [Route]) {
            self.listeners = listeners
            self.routes = routes
        }
    }
    let overview: @Sendable () -> Overview
    /// Reloads the configuration and says what happened (`POST /v1/reload`); nil: cannot.
    let reload: (@Sendable () async -> ReloadOutcome)?

    public init(
        hub: Hub,
        sessions: SessionDirectory,
        token: String?,
        cluster: (any ClusterAdministration)? = nil,
        certificates: (any CertificateAdministration)? = nil,
        routes: (any RouteAdministration)? = nil,
        metrics: @escaping @Sendable () -> [UInt8] = { [] },
        status: @escaping @Sendable () -> Status = { Status(readiness: "ready", degraded: nil) },
        overview: @escaping @Sendable () -> Overview = { Overview(listeners: [], routes: []) },
        reload: (@Sendable () async -> ReloadOutcome)? = nil
    ) {
        self.reload = reload
        self.status = status
        self.overview = overview
        self.certificates = certificates
        self.routes = routes
        self.hub = hub
        self.sessions = sessions
        self.token = token
        self.cluster = cluster
        self.metrics = metrics
        cluster?.setRequestHandler { [weak self] request, eventLoop in
            guard let self else {
                return eventLoop.makeSucceededFuture(ForwardedResponse(status: 503, headers: [], body: []))
            }
            return self.answerForwarded(request, on: eventLoop)
        }
    }

    public func handle(_ request: AdminRequest, on eventLoop: any EventLoop) -> EventLoopFuture<AdminResponse> {
        if Self.split(request.uri).path == "/console", request.method == .GET || request.method == .HEAD {
            // The page holds no data: everything it shows it fetches with the admin API's
            // token, which it takes from the URL's fragment (never sent to a server) or a form.
            return eventLoop.makeSucceededFuture(ConsolePage.response)
        }
        do {
            try authorize(request)
            return try route(request, on: eventLoop, forwarded: false).recover { Self.failure($0) }
        } catch {
            return eventLoop.makeSucceededFuture(Self.failure(error))
        }
    }

    /// A request another node of the cluster authorized and sent here, because the connection
    /// it names is held here (or to list this node's part of the cluster).
    func answerForwarded(
        _ forwarded: ForwardedRequest,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<ForwardedResponse> {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        let request = AdminRequest(
            method: HTTPMethod(rawValue: forwarded.method),
            uri: forwarded.uri,
            headers: headers,
            body: ByteBuffer(bytes: forwarded.body)
        )
        let answer: EventLoopFuture<AdminResponse>
        do {
            answer = try route(request, on: eventLoop, forwarded: true).recover { Self.failure($0) }
        } catch {
            answer = eventLoop.makeSucceededFuture(Self.failure(error))
        }
        return answer.map { response in
            ForwardedResponse(
                status: Int(response.status.code),
                headers: response.headers.map { ($0.name, $0.value) },
                body: Array(response.body.readableBytesView)
            )
        }
    }

    // MARK: Routing

    /// Finds the endpoint: each family of paths has its own file (`AdminAPI+Connections` and
    /// the rest), and every answer, errors included, leaves through `handle`.
    private func route(
        _ request: AdminRequest,
        on eventLoop: any EventLoop,
        forwarded: Bool
    ) throws(AdminError) -> EventLoopFuture<AdminResponse> {
        let call = AdminCall(request: request, eventLoop: eventLoop, forwarded: forwarded)
        let segments = call.segments
        if segments == ["metrics"] { return try metricsEndpoint(call) }
        guard segments.count >= 2, segments[0] == "v1" else { throw call.noSuchEndpoint }
        switch segments[1] {
        case "users", "tags": return try addressedEndpoint(call)
        case "connections": return try connectionsEndpoint(call)
        case "publish", "topics": return try topicsEndpoint(call)
        case "routes": return try routesEndpoint(call)
        case "overview", "status", "reload", "cluster", "certificates": return try gatewayEndpoint(call)
        default: throw call.noSuchEndpoint
        }
    }

    /// Whether a request head may go on to its body: the console's page needs no token; every
    /// other request needs it before a byte of its body is read. Nil when it may.
    func refusal(of head: HTTPRequestHead) -> AdminResponse? {
        if Self.split(head.uri).path == "/console", head.method == .GET || head.method == .HEAD { return nil }
        do {
            try authorize(headers: head.headers)
            return nil
        } catch {
            return Self.failure(error)
        }
    }

    private func authorize(_ request: AdminRequest) throws(AdminError) {
        try authorize(headers: request.headers)
    }

    private func authorize(headers: HTTPHeaders) throws(AdminError) {
        guard let token else { return }
        let presented = headers.first(name: "authorization") ?? ""
        let expected = "Bearer " + token
        guard Self.constantTimeEqual(Array(presented.utf8), Array(expected.utf8)) else {
            throw AdminError(
                .unauthorized,
                code: "unauthorized",
                presented.isEmpty ? "an Authorization: Bearer token is required" : "the bearer token is wrong"
            )
        }
    }
}

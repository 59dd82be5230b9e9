import GatewayCluster
import GatewayCore
import GatewayHub
import GatewayWebSocket
import NIOCore
import NIOHTTP1
import NIOWebSocket
import WorkerProtocol

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
import WorkerProtocol
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
    let cluster: ClusterNode?
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

    public init(
        hub: Hub,
        sessions: SessionDirectory,
        token: String?,
        cluster: ClusterNode? = nil,
        certificates: (any CertificateAdministration)? = nil,
        routes: (any RouteAdministration)? = nil,
        metrics: @escaping @Sendable () -> [UInt8] = { [] },
        status: @escaping @Sendable () -> Status = { Status(readiness: "ready", degraded: nil) },
        overview: @escaping @Sendable () -> Overview = { Overview(listeners: [], routes: []) }
    ) {
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

    private func route(
        _ request: AdminRequest,
        on eventLoop: any EventLoop,
        forwarded: Bool
    ) throws(AdminError) -> EventLoopFuture<AdminResponse> {
        let (path, query) = Self.split(request.uri)
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
        func only(_ methods: [HTTPMethod]) throws(AdminError) {
            guard methods.contains(request.method) else {
                var error = AdminError(
                    .methodNotAllowed,
                    code: "method_not_allowed",
                    "\(request.method.rawValue) is not allowed here; use \(methods.map(\.rawValue).joined(separator: " or "))"
                )
                error.allow = methods.map(\.rawValue).joined(separator: ", ")
                throw error
            }
        }
        // `/v1/connections/{id}[/send]` names its id; every other path is fixed.
        var id = ""
        var shape = segments
        if segments.count >= 3, segments[0] == "v1", segments[1] == "connections" {
            id = segments[2]
            shape[2] = "{id}"
        }
        var routeName = ""
        if segments.count >= 3, segments.count <= 4, segments[0] == "v1", segments[1] == "routes" {
            routeName = PercentDecoding.decode(segments[2]) ?? segments[2]
            shape[2] = "{name}"
        }
        var topic = ""
        if segments.count == 4, segments[0] == "v1", segments[1] == "topics",
            segments[3] == "presence" || segments[3] == "history"
        {
            topic = PercentDecoding.decode(segments[2]) ?? segments[2]
            shape[2] = "{topic}"
        }
        // `/v1/users/{user}[/send|/close]` and `/v1/tags/{tag}[/…]` name a user or a tag.
        var addressee = ""
        if segments.count >= 3, segments.count <= 4, segments[0] == "v1",
            segments[1] == "users" || segments[1] == "tags"
        {
            addressee = PercentDecoding.decode(segments[2]) ?? segments[2]
            shape[2] = "{name}"
            guard SessionDirectory.Identity.isValidName(addressee) else {
                throw AdminError.invalidField(
                    segments[1] == "users" ? "user" : "tag",
                    "'\(addressee)' is not a \(segments[1] == "users" ? "user id" : "tag"): 1 to 255 bytes, no control characters"
                )
            }
        }
        switch shape {
        case ["v1", "users", "{name}"], ["v1", "tags", "{name}"]:
            try only([.GET])
            try Self.noQuery(query)
            return addressed(
                user: shape[1] == "users" ? addressee : nil,
                tag: shape[1] == "tags" ? addressee : nil,
                on: eventLoop
            )
        case ["v1", "users", "{name}", "send"], ["v1", "tags", "{name}", "send"]:
            try only([.POST])
            try Self.noQuery(query)
            let message = try Self.message(from: try Self.object(request), allowed: [])
            let isUser = shape[1] == "users"
            let topic = isUser ? Hub.userTopic(addressee) : Hub.tagTopic(addressee)
            let here = hub.publish(message, to: topic).subscribers
            return eventLoop.makeSucceededFuture(
                Self.json(
                    .accepted,
                    AdminPayloads.AddressedAction(
                        user: isUser ? addressee : nil,
                        tag: isUser ? nil : addressee,
                        action: "send",
                        here: here
                    )
                )
            )
        case ["v1", "users", "{name}", "close"], ["v1", "tags", "{name}", "close"]:
            try only([.POST])
            try Self.noQuery(query)
            let (code, reason) = try Self.closeFields(request)
            let isUser = shape[1] == "users"
            let topic = isUser ? Hub.userTopic(addressee) : Hub.tagTopic(addressee)
            let here = hub.closeSubscribers(of: topic, code: code.code, reason: reason)
            return eventLoop.makeSucceededFuture(
                Self.json(
                    .accepted,
                    AdminPayloads.AddressedAction(
                        user: isUser ? addressee : nil,
                        tag: isUser ? nil : addressee,
                        action: "close",
                        here: here
                    )
                )
            )
        case ["metrics"]:
            try only([.GET])
            try Self.noQuery(query)
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: "text/plain; version=0.0.4; charset=utf-8")
            return eventLoop.makeSucceededFuture(
                AdminResponse(status: .ok, headers: headers, body: ByteBuffer(bytes: metrics()))
            )
        case ["v1", "overview"]:
            try only([.GET])
            try Self.noQuery(query)
            let now = overview()
            let counts = sessions.countsByRoute()
            let state = status()
            return eventLoop.makeSucceededFuture(
                Self.json(
                    .ok,
                    AdminPayloads.Overview(
                        node: cluster?.name,
                        readiness: state.readiness,
                        connections: sessions.count,
                        listeners: now.listeners.map { .init(name: $0.name, address: $0.address, tls: $0.tls) },
                        routes: now.routes.map {
                            .init(name: $0.name, path: $0.path, kind: $0.kind, connections: counts[$0.name] ?? 0)
                        }
                    )
                )
            )
        case ["v1", "status"]:
            try only([.GET])
            try Self.noQuery(query)
            let now = status()
            return eventLoop.makeSucceededFuture(
                Self.json(.ok, AdminPayloads.Status(readiness: now.readiness, degraded: now.degraded))
            )
        case ["v1", "publish"]:
            try only([.POST])
            try Self.noQuery(query)
            return try publish(try Self.object(request), on: eventLoop)
        case ["v1", "topics"]:
            try only([.GET])
            try Self.noQuery(query)
            // Users' and tags' own topics are listed at /v1/users and /v1/tags, not here.
            let topics = hub.subscriptionCounts().filter { !Hub.isReserved($0.subscription) }.map {
                AdminPayloads.Topic(topic: $0.subscription, subscribers: $0.subscribers)
            }
            return eventLoop.makeSucceededFuture(Self.json(.ok, AdminPayloads.Topics(topics: topics)))
        case ["v1", "topics", "{topic}", "presence"]:
            try only([.GET])
            try Self.noQuery(query)
            return try presence(of: topic, on: eventLoop)
        case ["v1", "topics", "{topic}", "history"]:
            try only([.GET])
            return try history(of: topic, query: query, on: eventLoop)
        case ["v1", "cluster"]:
            try only([.GET])
            try Self.noQuery(query)
            return try clusterState(on: eventLoop)
        case ["v1", "certificates"]:
            try only([.GET])
            try Self.noQuery(query)
            guard let certificates else {
                throw AdminError.notFound("no listener gets its certificate by ACME (tls.acme)")
            }
            return eventLoop.makeSucceededFuture(
                Self.json(.ok, AdminPayloads.Certificates(statuses: certificates.certificateStatuses))
            )
        case ["v1", "certificates", "renew"]:
            try only([.POST])
            guard let certificates else {
                throw AdminError.notFound("no listener gets its certificate by ACME (tls.acme)")
            }
            var listener: String?
            for (key, value) in query {
                guard key == "listener" else {
                    throw AdminError.invalidField(key, "unknown parameter '\(key)'; renew takes listener")
                }
                listener = value
            }
            let renewing = certificates.renewNow(listener: listener)
            guard !renewing.isEmpty else {
                throw AdminError.notFound("listener '\(listener ?? "")' does not get its certificate by ACME")
            }
            return eventLoop.makeSucceededFuture(Self.json(.accepted, AdminPayloads.Renewing(listeners: renewing)))
        case ["v1", "routes"]:
            try only([.GET])
            try Self.noQuery(query)
            let routes = (self.routes?.workerRoutes ?? []).map { AdminPayloads.WorkerRoute(status: $0) }
            return eventLoop.makeSucceededFuture(Self.json(.ok, AdminPayloads.WorkerRoutes(routes: routes)))
        case ["v1", "routes", "{name}"]:
            try only([.GET])
            try Self.noQuery(query)
            guard let status = routes?.workerRoutes.first(where: { $0.route == routeName }) else {
                throw AdminError.notFound("no worker route named '\(routeName)'")
            }
            return eventLoop.makeSucceededFuture(Self.json(.ok, AdminPayloads.WorkerRoute(status: status)))
        case ["v1", "routes", "{name}", "deploy"]:
            try only([.POST])
            try Self.noQuery(query)
            return eventLoop.makeSucceededFuture(try deploy(routeName, request))
        case ["v1", "connections"]:
            try only([.GET])
            return try listConnections(query, on: eventLoop, forwarded: forwarded)
        case ["v1", "connections", "{id}"]:
            try only([.GET, .DELETE])
            if let remote = try remoteOwner(of: id, forwarded: forwarded) {
                return forward(request, toNode: remote, on: eventLoop)
            }
            let entry = try entry(id)
            if request.method == .GET {
                try Self.noQuery(query)
                return detail(entry)
            }
            return try close(entry, query: query)
        case ["v1", "connections", "{id}", "send"]:
            try only([.POST])
            try Self.noQuery(query)
            if let remote = try remoteOwner(of: id, forwarded: forwarded) {
                return forward(request, toNode: remote, on: eventLoop)
            }
            let entry = try entry(id)
            let message = try Self.message(from: try Self.object(request), allowed: [])
            return send(message, to: entry)
        default:
            throw AdminError.notFound("no such endpoint: \(path)")
        }
    }

    /// `POST /v1/routes/{name}/deploy`: an empty body deploys the running command again; a body
    /// `{"command": …, "args": […], "env": ["NAME=value", …]}` deploys that one.
    private func deploy(_ name: String, _ request: AdminRequest) throws(AdminError) -> AdminResponse {
        guard let routes else { throw AdminError.notFound("no worker route named '\(name)'") }
        var program: WorkerProgram?
        if request.body.readableBytes > 0 {
            let body = try Self.object(request)
            for key in body.keys.sorted() where !["command", "args", "env"].contains(key) {
                throw AdminError.invalidField(key, "unknown field '\(key)'; deploy takes command, args and env")
            }
            guard case .string(let command)? = body["command"], !command.isEmpty else {
                throw AdminError.invalidField("command", "command must be a non-empty string")
            }
            func strings(_ key: String) throws(AdminError) -> [String] {
                guard let value = body[key] else { return [] }
                guard case .array(let items) = value else {
                    throw AdminError.invalidField(key, "\(key) must be an array of strings")
                }
                var result: [String] = []
                for item in items {
                    guard case .string(let text) = item else {
                        throw AdminError.invalidField(key, "\(key) must be an array of strings")
                    }
                    result.append(text)
                }
                return result
            }
            let environment = try strings("env")
            if let bad = environment.first(where: { !$0.contains("=") || $0.hasPrefix("=") }) {
                throw AdminError.invalidField("env", "'\(bad)' is not NAME=value")
            }
            program = WorkerProgram(command: command, arguments: try strings("args"), environment: environment)
        }
        do {
            let status = try routes.deploy(route: name, command: program)
            return Self.json(.accepted, AdminPayloads.WorkerRoute(status: status))
        } catch {
            switch error.code {
            case .notFound: throw AdminError.notFound(error.message)
            case .conflict: throw AdminError(.conflict, code: "deploy_conflict", error.message)
            }
        }
    }

    private func authorize(_ request: AdminRequest) throws(AdminError) {
        guard let token else { return }
        let presented = request.headers.first(name: "authorization") ?? ""
        let expected = "Bearer " + token
        guard Self.constantTimeEqual(Array(presented.utf8), Array(expected.utf8)) else {
            throw AdminError(
                .unauthorized,
                code: "unauthorized",
                presented.isEmpty ? "an Authorization: Bearer token is required" : "the bearer token is wrong"
            )
        }
    }

    // MARK: Endpoints

    private func publish(
        _ body: [String: JSONValue],
        on eventLoop: any EventLoop
    ) throws(AdminError) -> EventLoopFuture<AdminResponse> {
        guard case .string(let topic)? = body["topic"] else {
            throw AdminError.invalidField(
                "topic",
                body["topic"] == nil ? "topic is required" : "topic must be a string"
            )
        }
        guard HubRouteSettings.isValidTopic(topic, allowPattern: false) else {
            throw AdminError.invalidField(
                "topic",
                "'\(topic)' is not a topic: 1 to 255 bytes, no spaces, control characters or '*'"
            )
        }
        let message: WebSocketMessage
        if let data = body["data"] {
            for key in body.keys.sorted() where key != "topic" && key != "data" {
                throw AdminError.invalidField(
                    key,
                    key == "text" || key == "binary" ? "give one of text, binary or data" : "unknown field '\(key)'"
                )
            }
            var event = WebSocketMessage(kind: .text, data: HubRouteService.messageEvent(topic: topic, data: data))
            event.isHubEvent = true
            message = event
        } else {
            message = try Self.message(from: body, allowed: ["topic"])
        }
        return hub.publish(message, to: topic, on: eventLoop).map { published in
            Self.json(
                .ok,
                AdminPayloads.Published(
                    topic: topic,
                    delivered: published.subscribers,
                    position: published.position
                )
            )
        }.recover { Self.failure(Self.adminError($0)) }
    }

    private func listConnections(
        _ query: [(String, String)],
        on eventLoop: any EventLoop,
        forwarded: Bool
    ) throws(AdminError) -> EventLoopFuture<AdminResponse> {
        var route: String?
        var topic: String?
        var user: String?
        var tag: String?
        var limit = Self.defaultPageSize
        var after: UInt64 = 0
        var wholeCluster = false
        for (name, value) in query {
            switch name {
            case "scope":
                guard value == "node" || value == "cluster" else {
                    throw AdminError.invalidField("scope", "scope is node (this gateway) or cluster (every node)")
                }
                wholeCluster = value == "cluster"
            case "route": route = value
            case "user": user = value
            case "tag": tag = value
            case "topic":
                guard HubRouteSettings.isValidTopic(value, allowPattern: false) else {
                    throw AdminError.invalidField("topic", "'\(value)' is not a topic")
                }
                topic = value
            case "limit":
                guard let parsed = Int(value), (1...Self.maxPageSize).contains(parsed) else {
                    throw AdminError.invalidField("limit", "limit is an integer from 1 to \(Self.maxPageSize)")
                }
                limit = parsed
            case "after":
                guard let parsed = UInt64(value) else {
                    throw AdminError.invalidField("after", "after is a connection id (the previous page's next)")
                }
                after = parsed
            default:
                throw AdminError.invalidField(
                    name,
                    "unknown query parameter '\(name)': use route, topic, user, tag, limit, after or scope"
                )
            }
        }
        let receiving = topic.map { hub.subscriberIDs(receiving: $0) }
        let ofUser = user.map { Set(sessions.entries(ofUser: $0).map(\.id)) }
        let withTag = tag.map { Set(sessions.entries(withTag: $0).map(\.id)) }
        let (entries, more) = sessions.page(after: after, limit: limit) { entry in
            (route == nil || entry.route == route) && (receiving?.contains(entry.id) ?? true)
                && (ofUser?.contains(entry.id) ?? true) && (withTag?.contains(entry.id) ?? true)
        }
        let local = AdminPayloads.ConnectionPage(
            connections: entries.map { describe($0) },
            next: more ? entries.last?.id : nil
        )
        guard wholeCluster, !forwarded, let cluster else {
            return eventLoop.makeSucceededFuture(Self.json(.ok, local))
        }
        // Every other live node answers the same question for its own connections; ids order
        // the merged page (a node's number is in its ids' top bits).
        let nodeQuery = query.filter { $0.0 != "scope" }.map {
            "\(PercentDecoding.encode($0.0))=\(PercentDecoding.encode($0.1))"
        }.joined(separator: "&")
        let pageSize = limit
        return eventLoop.makeFutureWithTask {
            let nodes: [(number: Int, name: String)]
            do {
                nodes = try await cluster.liveNodes()
            } catch {
                return Self.failure(Self.adminError(error))
            }
            var connections = local.connections
            var anyMore = local.next != nil
            for node in nodes where node.number != cluster.number {
                let request = ForwardedRequest(
                    method: "GET",
                    uri: "/v1/connections" + (nodeQuery.isEmpty ? "" : "?" + nodeQuery),
                    body: []
                )
                do {
                    let response = try await cluster.forward(request, toNode: node.number).get()
                    guard response.status == 200,
                        let page = try? JSONDecoder().decode(
                            AdminPayloads.ConnectionPage.self,
                            from: Data(response.body)
                        )
                    else {
                        return Self.failure(
                            AdminError(
                                .badGateway,
                                code: "node_failed",
                                "node '\(node.name)' answered \(response.status)"
                            )
                        )
                    }
                    connections += page.connections
                    anyMore = anyMore || page.next != nil
                } catch {
                    return Self.failure(Self.adminError(error))
                }
            }
            connections.sort { $0.id < $1.id }
            let more = anyMore || connections.count > pageSize
            let shown = Array(connections.prefix(pageSize))
            return Self.json(.ok, AdminPayloads.ConnectionPage(connections: shown, next: more ? shown.last?.id : nil))
        }
    }

    /// The node that holds connection `text`, when it is another one (and this request was not
    /// itself forwarded: a node answers for its own connections only).
    private func remoteOwner(of text: String, forwarded: Bool) throws(AdminError) -> Int? {
        guard !forwarded, let cluster else { return nil }
        guard let id = UInt64(text), id > 0 else {
            throw AdminError.invalidField("id", "'\(text)' is not a connection id (a positive integer)")
        }
        return cluster.isRemote(id) ? ClusterSettings.nodeNumber(ofConnection: id) : nil
    }

    /// Sends the request to the node holding the connection, and its answer back as it is.
    private func forward(
        _ request: AdminRequest,
        toNode number: Int,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<AdminResponse> {
        guard let cluster else {
            return eventLoop.makeSucceededFuture(Self.failure(AdminError.notFound("no such node")))
        }
        let forwarded = ForwardedRequest(
            method: request.method.rawValue,
            uri: request.uri,
            body: Array(request.body.readableBytesView)
        )
        return cluster.forward(forwarded, toNode: number).hop(to: eventLoop).map { response in
            var headers = HTTPHeaders()
            for (name, value) in response.headers
            where ["content-type", "allow", "retry-after"].contains(name.lowercased()) {
                headers.add(name: name, value: value)
            }
            return AdminResponse(
                status: HTTPResponseStatus(statusCode: response.status),
                headers: headers,
                body: ByteBuffer(bytes: response.body)
            )
        }.recover { error in
            Self.failure(Self.adminError(error))
        }
    }

    /// A cluster failure as the admin API reports it.
    static func adminError(_ error: any Error) -> AdminError {
        guard let error = error as? ClusterError else {
            return AdminError(.serviceUnavailable, code: "cluster_link_down", "\(error)")
        }
        switch error.code {
        case .linkDown, .nodeNumberTaken:
            return AdminError(.serviceUnavailable, code: error.code.rawValue, error.message)
        case .noSuchNode: return AdminError(.notFound, code: "not_found", error.message)
        case .timeout: return AdminError(.gatewayTimeout, code: error.code.rawValue, error.message)
        }
    }

    /// Who is subscribed to a topic (or pattern): on every live node in a cluster, else here.
    /// A topic's kept publications, all or those after `since` (with `epoch`), as hub clients
    /// get them; 404 when no route keeps history for the topic.
    private func history(
        of topic: String,
        query: [(String, String)],
        on eventLoop: any EventLoop
    ) throws(AdminError) -> EventLoopFuture<AdminResponse> {
        guard HubRouteSettings.isValidTopic(topic, allowPattern: false) else {
            throw AdminError.invalidField("topic", "'\(topic)' is not a topic (no patterns)")
        }
        var offset: UInt64?
        var epoch: String?
        for (name, value) in query {
            switch name {
            case "since":
                guard let number = UInt64(value) else {
                    throw AdminError.invalidField("since", "'\(value)' is not an offset (a whole number)")
                }
                offset = number
            case "epoch":
                guard !value.isEmpty else { throw AdminError.invalidField("epoch", "an epoch is not empty") }
                epoch = value
            default:
                throw AdminError.invalidField(name, "unknown query parameter '\(name)'")
            }
        }
        if (offset == nil) != (epoch == nil) {
            throw AdminError.invalidField(offset == nil ? "since" : "epoch", "give since and epoch together")
        }
        guard let history = hub.history(for: topic) else {
            throw AdminError.notFound("no route keeps history for topic '\(topic)' (hub.history)")
        }
        let since = offset.map { StreamPosition(offset: $0, epoch: epoch!) }
        return history.replay(topic, since: since, on: eventLoop).map { replay in
            let decoder = JSONDecoder()
            let publications = replay.events.compactMap {
                try? decoder.decode(JSONValue.self, from: Data($0.readableBytesView))
            }
            return Self.json(
                .ok,
                AdminPayloads.History(
                    topic: topic,
                    position: replay.position,
                    recovered: replay.recovered,
                    publications: publications
                )
            )
        }.recover { Self.failure(Self.adminError($0)) }
    }

    /// Who has a user id or a tag, on every node: the presence of its reserved topic.
    private func addressed(user: String?, tag: String?, on eventLoop: any EventLoop) -> EventLoopFuture<AdminResponse> {
        let topic = user.map(Hub.userTopic) ?? Hub.tagTopic(tag ?? "")
        @Sendable func answer(_ connections: [AdminPayloads.Presence.Subscriber]) -> AdminResponse {
            Self.json(
                .ok,
                AdminPayloads.Addressee(user: user, tag: tag, online: !connections.isEmpty, connections: connections)
            )
        }
        guard let cluster else {
            let ids = hub.subscriberIDs(receiving: topic).sorted()
            return eventLoop.makeSucceededFuture(answer(ids.map { .init(id: $0, node: nil) }))
        }
        return eventLoop.makeFutureWithTask {
            do {
                let entries = try await cluster.presence(of: topic)
                let connections = entries.flatMap { entry in
                    entry.ids.map { AdminPayloads.Presence.Subscriber(id: $0, node: entry.node) }
                }
                return answer(connections.sorted { $0.id < $1.id })
            } catch {
                return Self.failure(Self.adminError(error))
            }
        }
    }

    private func presence(
        of topic: String,
        on eventLoop: any EventLoop
    ) throws(AdminError) -> EventLoopFuture<AdminResponse> {
        guard HubRouteSettings.isValidTopic(topic, allowPattern: true) else {
            throw AdminError.invalidField("topic", "'\(topic)' is not a topic or pattern")
        }
        guard let cluster else {
            let ids = (hub.subscriptionsByTopic()[topic] ?? []).sorted()
            return eventLoop.makeSucceededFuture(
                Self.json(.ok, AdminPayloads.Presence(topic: topic, subscribers: ids.map { .init(id: $0, node: nil) }))
            )
        }
        return eventLoop.makeFutureWithTask {
            do {
                let entries = try await cluster.presence(of: topic)
                let subscribers = entries.flatMap { entry in
                    entry.ids.map { AdminPayloads.Presence.Subscriber(id: $0, node: entry.node) }
                }
                return Self.json(
                    .ok,
                    AdminPayloads.Presence(topic: topic, subscribers: subscribers.sorted { $0.id < $1.id })
                )
            } catch {
                return Self.failure(Self.adminError(error))
            }
        }
    }

    private func clusterState(on eventLoop: any EventLoop) throws(AdminError) -> EventLoopFuture<AdminResponse> {
        guard let cluster else { throw AdminError.notFound("this gateway is not part of a cluster (no cluster.redis)") }
        return eventLoop.makeFutureWithTask {
            let nodes = (try? await cluster.liveNodes()) ?? []
            return Self.json(
                .ok,
                AdminPayloads.Cluster(
                    node: cluster.name,
                    number: cluster.number,
                    linked: cluster.isLinked,
                    nodes: nodes.map { .init(name: $0.name, number: $0.number) }
                )
            )
        }
    }

    private func entry(_ text: String) throws(AdminError) -> SessionDirectory.Entry {
        guard let id = UInt64(text), id > 0 else {
            throw AdminError.invalidField("id", "'\(text)' is not a connection id (a positive integer)")
        }
        guard let entry = sessions.entry(id) else {
            throw AdminError.notFound("no open connection with id \(id)")
        }
        return entry
    }

    private func describe(_ entry: SessionDirectory.Entry) -> AdminPayloads.Connection {
        var connection = AdminPayloads.Connection(
            id: entry.id,
            route: entry.route,
            kind: entry.kind,
            peer: entry.peer,
            openedAt: Self.timestamp(millis: entry.openedAtMillis),
            subprotocol: entry.subprotocol,
            compression: entry.compression,
            topics: hub.topics(of: entry.id).filter { !Hub.isReserved($0) }.sorted(),
            node: cluster?.name
        )
        let identity = sessions.identity(of: entry.id)
        connection.user = identity.user
        connection.tags = identity.tags.sorted()
        return connection
    }

    private func detail(_ entry: SessionDirectory.Entry) -> EventLoopFuture<AdminResponse> {
        let described = describe(entry)
        return sessions.snapshot(of: entry).map { snapshot in
            let open = snapshot?.isOpen ?? entry.channel.isActive
            var connection = described
            connection.detail = (open ? "open" : "closing", snapshot.map(AdminPayloads.Statistics.init))
            return Self.json(.ok, connection)
        }
    }

    private func send(_ message: WebSocketMessage, to entry: SessionDirectory.Entry) -> EventLoopFuture<AdminResponse> {
        sessions.send(message, to: entry).map { outcome in
            switch outcome {
            case .queued:
                return Self.json(.accepted, AdminPayloads.Queued(id: entry.id, queued: true))
            case .closed:
                return Self.failure(
                    AdminError(.conflict, code: "connection_closing", "connection \(entry.id) is closing")
                )
            case .overflowed:
                return Self.failure(
                    AdminError(
                        .conflict,
                        code: "send_queue_full",
                        "connection \(entry.id) was not reading; its send queue overflowed and it is being closed"
                    )
                )
            case .proxied:
                return Self.failure(
                    AdminError(
                        .conflict,
                        code: "proxied",
                        "connection \(entry.id) is proxied: its bytes pass through and the gateway does not send on it"
                    )
                )
            }
        }
    }

    private func close(
        _ entry: SessionDirectory.Entry,
        query: [(String, String)]
    ) throws(AdminError) -> EventLoopFuture<AdminResponse> {
        var code = WebSocketErrorCode.normalClosure
        var reason = ""
        for (name, value) in query {
            switch name {
            case "code":
                guard let parsed = UInt16(value), WebSocketErrorCode.isValidOnWire(parsed), parsed != 1010 else {
                    throw AdminError.invalidField(
                        "code",
                        "'\(value)' is not a close code a server may send (1000–1003, 1007–1009, 1011–1014, 3000–4999)"
                    )
                }
                code = WebSocketErrorCode(code: parsed)
            case "reason":
                guard value.utf8.count <= 123 else {
                    throw AdminError.invalidField("reason", "a close reason is at most 123 bytes of UTF-8")
                }
                reason = value
            default:
                throw AdminError.invalidField(name, "unknown query parameter '\(name)': use code or reason")
            }
        }
        let answer = Self.json(.accepted, AdminPayloads.Closing(id: entry.id, code: code.code, closing: true))
        return sessions.close(entry, code: code, reason: reason).map {
            answer
        }
    }

    // MARK: Request bodies

    /// A close by user or tag: an optional body `{"code": 4000, "reason": "…"}` (1000 and no
    /// reason by default).
    static func closeFields(_ request: AdminRequest) throws(AdminError) -> (WebSocketErrorCode, String) {
        guard request.body.readableBytes > 0 else { return (.normalClosure, "") }
        let body = try object(request)
        var code = WebSocketErrorCode.normalClosure
        var reason = ""
        for (key, value) in body.sorted(by: { $0.key < $1.key }) {
            switch (key, value) {
            case ("code", .number(let number)):
                guard let parsed = UInt16(exactly: number), WebSocketErrorCode.isValidOnWire(parsed), parsed != 1010
                else {
                    throw AdminError.invalidField(
                        "code",
                        "not a close code a server may send (1000–1003, 1007–1009, 1011–1014, 3000–4999)"
                    )
                }
                code = WebSocketErrorCode(code: parsed)
            case ("reason", .string(let text)):
                guard text.utf8.count <= 123 else {
                    throw AdminError.invalidField("reason", "a close reason is at most 123 bytes of UTF-8")
                }
                reason = text
            case ("code", _): throw AdminError.invalidField("code", "code must be a number")
            case ("reason", _): throw AdminError.invalidField("reason", "reason must be a string")
            default: throw AdminError.invalidField(key, "unknown field '\(key)'; close takes code and reason")
            }
        }
        return (code, reason)
    }

    /// The body as a JSON object; the content type, when given, must be JSON.
    static func object(_ request: AdminRequest) throws(AdminError) -> [String: JSONValue] {
        if let type = request.headers.first(name: "content-type"),
            !type.lowercased().hasPrefix("application/json")
        {
            throw AdminError(
                .unsupportedMediaType,
                code: "unsupported_media_type",
                "the body must be application/json, not \(type)"
            )
        }
        guard request.body.readableBytes > 0 else {
            throw AdminError(.badRequest, code: "invalid_json", "a JSON object body is required")
        }
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(request.body.readableBytesView)) else {
            throw AdminError(.badRequest, code: "invalid_json", "the body is not valid JSON")
        }
        guard case .object(let object) = value else {
            throw AdminError(.badRequest, code: "invalid_json", "the body must be a JSON object")
        }
        return object
    }

    /// A message from `text` (sent as a text message) or `binary` (base64, sent as binary);
    /// exactly one of them, and no fields but those and `allowed`.
    static func message(from body: [String: JSONValue], allowed: Set<String>) throws(AdminError) -> WebSocketMessage {
        for key in body.keys.sorted() where key != "text" && key != "binary" && !allowed.contains(key) {
            throw AdminError.invalidField(key, "unknown field '\(key)'")
        }
        switch (body["text"], body["binary"]) {
        case (.some, .some):
            throw AdminError.invalidField("binary", "give either text or binary, not both")
        case (nil, nil):
            throw AdminError.invalidField(
                "text",
                allowed.contains("topic")
                    ? "one of data, text or binary is required" : "one of text or binary is required"
            )
        case (let text?, nil):
            guard case .string(let string) = text else {
                throw AdminError.invalidField("text", "text must be a string")
            }
            return WebSocketMessage(kind: .text, data: ByteBuffer(string: string))
        case (nil, let binary?):
            guard case .string(let encoded) = binary, let bytes = Data(base64Encoded: encoded) else {
                throw AdminError.invalidField("binary", "binary must be a base64 string")
            }
            return WebSocketMessage(kind: .binary, data: ByteBuffer(bytes: bytes))
        }
    }

    static func noQuery(_ query: [(String, String)]) throws(AdminError) {
        if let (name, _) = query.first {
            throw AdminError.invalidField(name, "unknown query parameter '\(name)'")
        }
    }

    /// Path and decoded query pairs (`+` and `%XX` as in HTML forms).
    static func split(_ uri: String) -> (path: String, query: [(String, String)]) {
        (RouteTable.path(of: uri), PercentDecoding.queryPairs(of: uri).map { ($0.name, $0.value) })
    }

    // MARK: Answers

    static func json(_ status: HTTPResponseStatus, _ value: some Encodable) -> AdminResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        let body = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return AdminResponse(status: status, headers: headers, body: ByteBuffer(bytes: body))
    }

    static func failure(_ error: any Error) -> AdminResponse {
        let error = error as? AdminError ?? AdminError(.internalServerError, code: "internal", "\(error)")
        var response = json(
            error.status,
            AdminPayloads.ErrorBody(error: .init(code: error.code, field: error.field, message: error.message))
        )
        if let allow = error.allow {
            response.headers.add(name: "allow", value: allow)
        }
        if error.status == .unauthorized {
            response.headers.add(name: "www-authenticate", value: "Bearer realm=\"wssgate-admin\"")
        }
        return response
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }

    /// RFC 3339 in UTC with milliseconds.
    static func timestamp(millis: Int64) -> String {
        var seconds = time_t(millis / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(millis % 1000), 3))Z"
    }
}

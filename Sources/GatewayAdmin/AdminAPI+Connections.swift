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

/// Connections: listed (node-wide or cluster-wide), inspected, messaged and closed.
extension AdminAPI {
    /// `/v1/connections[/{id}[/send]]`: list, inspect, close and message connections; in a
    /// cluster, one held by another node is asked there.
    func connectionsEndpoint(_ call: AdminCall) throws(AdminError) -> EventLoopFuture<AdminResponse> {
        let segments = call.segments
        switch segments.count {
        case 2:
            try call.only([.GET])
            return try listConnections(call.query, on: call.eventLoop, forwarded: call.forwarded)
        case 3:
            try call.only([.GET, .DELETE])
            if let remote = try remoteOwner(of: segments[2], forwarded: call.forwarded) {
                return forward(call.request, toNode: remote, on: call.eventLoop)
            }
            let entry = try entry(segments[2])
            if call.request.method == .GET {
                try call.noQuery()
                return detail(entry)
            }
            return try close(entry, query: call.query)
        case 4 where segments[3] == "send":
            try call.only([.POST])
            try call.noQuery()
            if let remote = try remoteOwner(of: segments[2], forwarded: call.forwarded) {
                return forward(call.request, toNode: remote, on: call.eventLoop)
            }
            let entry = try entry(segments[2])
            let message = try Self.message(from: try Self.object(call.request), allowed: [])
            return send(message, to: entry)
        default:
            throw call.noSuchEndpoint
        }
    }

    func listConnections(
        _ query: [(String, String)],
        on eventLoop: any EventLoop,
        forwarded: Bool
    ) throws(AdminError) -> EventLoopFuture<AdminResponse> {
        let filter = try ConnectionQuery(query)
        let route = filter.route
        let receiving = filter.topic.map { hub.subscriberIDs(receiving: $0) }
        let ofUser = filter.user.map { Set(sessions.entries(ofUser: $0).map(\.id)) }
        let withTag = filter.tag.map { Set(sessions.entries(withTag: $0).map(\.id)) }
        let (entries, more) = sessions.page(after: filter.after, limit: filter.limit) { entry in
            (route == nil || entry.route == route) && (receiving?.contains(entry.id) ?? true)
                && (ofUser?.contains(entry.id) ?? true) && (withTag?.contains(entry.id) ?? true)
        }
        let local = AdminPayloads.ConnectionPage(
            connections: entries.map { describe($0) },
            next: more ? entries.last?.id : nil
        )
        guard filter.wholeCluster, !forwarded, let cluster else {
            return eventLoop.makeSucceededFuture(Self.json(.ok, local))
        }
        return clusterPage(local, query: query, limit: filter.limit, cluster: cluster, on: eventLoop)
    }

    /// The local page merged with every other live node's answer to the same question.
    private func clusterPage(
        _ local: AdminPayloads.ConnectionPage,
        query: [(String, String)],
        limit: Int,
        cluster: any ClusterAdministration,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<AdminResponse> {
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
    func remoteOwner(of text: String, forwarded: Bool) throws(AdminError) -> Int? {
        guard !forwarded, let cluster else { return nil }
        guard let id = UInt64(text), id > 0 else {
            throw AdminError.invalidField("id", "'\(text)' is not a connection id (a positive integer)")
        }
        return cluster.isRemote(id) ? ClusterSettings.nodeNumber(ofConnection: id) : nil
    }

    /// Sends the request to the node holding the connection, and its answer back as it is.
    func forward(
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
        // Sent to Redis, no answer: the publication may be recorded (504, not "unavailable").
        if let undecided = error as? UndecidedAppend {
            return AdminError(.gatewayTimeout, code: ClusterError.Code.timeout.rawValue, undecided.description)
        }
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

    func entry(_ text: String) throws(AdminError) -> SessionDirectory.Entry {
        guard let id = UInt64(text), id > 0 else {
            throw AdminError.invalidField("id", "'\(text)' is not a connection id (a positive integer)")
        }
        guard let entry = sessions.entry(id) else {
            throw AdminError.notFound("no open connection with id \(id)")
        }
        return entry
    }

    func describe(_ entry: SessionDirectory.Entry) -> AdminPayloads.Connection {
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

    func detail(_ entry: SessionDirectory.Entry) -> EventLoopFuture<AdminResponse> {
        let described = describe(entry)
        return sessions.snapshot(of: entry).map { snapshot in
            let open = snapshot?.isOpen ?? entry.channel.isActive
            var connection = described
            connection.detail = (open ? "open" : "closing", snapshot.map(AdminPayloads.Statistics.init))
            return Self.json(.ok, connection)
        }
    }

    func send(_ message: WebSocketMessage, to entry: SessionDirectory.Entry) -> EventLoopFuture<AdminResponse> {
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

    func close(
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
}

import GatewayCore
import GatewayHub
import GatewayWebSocket

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The JSON bodies of the admin API's answers (docs/admin-api.yaml names each schema). Optional
/// fields are written as `null`, never left out, so every answer has the same keys.
enum AdminPayloads {
    struct ErrorBody: Encodable {
        struct Detail: Encodable {
            var code: String
            var field: String?
            var message: String
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(code, forKey: .code)
                try container.encode(field, forKey: .field)
                try container.encode(message, forKey: .message)
            }
            enum CodingKeys: String, CodingKey { case code, field, message }
        }
        var error: Detail
    }

    struct Published: Encodable {
        var topic: String
        var delivered: Int
        /// On a topic with history: the publication's position (null on others).
        var position: StreamPosition?

        enum CodingKeys: String, CodingKey { case topic, delivered, position }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(topic, forKey: .topic)
            try container.encode(delivered, forKey: .delivered)
            try container.encode(position, forKey: .position)
        }
    }

    struct History: Encodable {
        var topic: String
        var position: StreamPosition
        /// With `since`: whether every publication after it is listed (null without).
        var recovered: Bool?
        /// `message` events with their offsets, oldest first.
        var publications: [JSONValue]

        enum CodingKeys: String, CodingKey { case topic, position, recovered, publications }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(topic, forKey: .topic)
            try container.encode(position, forKey: .position)
            try container.encode(recovered, forKey: .recovered)
            try container.encode(publications, forKey: .publications)
        }
    }

    struct Statistics: Encodable {
        var messagesIn: Int
        var messagesOut: Int
        var bytesIn: Int
        var bytesOut: Int
        var messagesDropped: Int
        var backlogMessages: Int
        var backlogBytes: Int

        enum CodingKeys: String, CodingKey {
            case messagesIn = "messages_in"
            case messagesOut = "messages_out"
            case bytesIn = "bytes_in"
            case bytesOut = "bytes_out"
            case messagesDropped = "messages_dropped"
            case backlogMessages = "backlog_messages"
            case backlogBytes = "backlog_bytes"
        }

        init(_ snapshot: SessionDirectory.Snapshot) {
            messagesIn = snapshot.statistics.messagesIn
            messagesOut = snapshot.statistics.messagesOut
            bytesIn = snapshot.statistics.bytesIn
            bytesOut = snapshot.statistics.bytesOut
            messagesDropped = snapshot.statistics.messagesDropped
            backlogMessages = snapshot.backlogMessages
            backlogBytes = snapshot.backlogBytes
        }
    }

    /// One connection; `state` and `statistics` only in the single-connection answer.
    struct Connection: Codable {
        var id: UInt64
        var route: String
        var kind: String
        var peer: String
        var openedAt: String
        var subprotocol: String?
        var compression: Bool
        var topics: [String]
        /// Its user id (a token's `sub`, or set by its backend); null when it has none.
        var user: String? = nil
        var tags: [String] = []
        /// The cluster node holding it; null outside a cluster.
        var node: String?
        var detail: (state: String, statistics: Statistics?)?

        enum CodingKeys: String, CodingKey {
            case id, route, kind, peer
            case openedAt = "opened_at"
            case subprotocol, compression, topics, user, tags, node, state, statistics
        }

        init(
            id: UInt64,
            route: String,
            kind: String,
            peer: String,
            openedAt: String,
            subprotocol: String?,
            compression: Bool,
            topics: [String],
            node: String?
        ) {
            self.id = id
            self.route = route
            self.kind = kind
            self.peer = peer
            self.openedAt = openedAt
            self.subprotocol = subprotocol
            self.compression = compression
            self.topics = topics
            self.node = node
        }

        /// A listing entry as another node of the cluster wrote it.
        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            id = try container.decode(UInt64.self, forKey: .id)
            route = try container.decode(String.self, forKey: .route)
            kind = try container.decode(String.self, forKey: .kind)
            peer = try container.decode(String.self, forKey: .peer)
            openedAt = try container.decode(String.self, forKey: .openedAt)
            subprotocol = try container.decodeIfPresent(String.self, forKey: .subprotocol)
            compression = try container.decode(Bool.self, forKey: .compression)
            topics = try container.decode([String].self, forKey: .topics)
            user = try container.decodeIfPresent(String.self, forKey: .user)
            tags = try container.decodeIfPresent([String].self, forKey: .tags) ?? []
            node = try container.decodeIfPresent(String.self, forKey: .node)
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(route, forKey: .route)
            try container.encode(kind, forKey: .kind)
            try container.encode(peer, forKey: .peer)
            try container.encode(openedAt, forKey: .openedAt)
            try container.encode(subprotocol, forKey: .subprotocol)
            try container.encode(compression, forKey: .compression)
            try container.encode(topics, forKey: .topics)
            try container.encode(user, forKey: .user)
            try container.encode(tags, forKey: .tags)
            try container.encode(node, forKey: .node)
            if let detail {
                try container.encode(detail.state, forKey: .state)
                try container.encode(detail.statistics, forKey: .statistics)
            }
        }
    }

    struct ConnectionPage: Codable {
        var connections: [Connection]
        /// The `after` value for the next page; null on the last page.
        var next: UInt64?
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(connections, forKey: .connections)
            try container.encode(next, forKey: .next)
        }
        enum CodingKeys: String, CodingKey { case connections, next }
        init(connections: [Connection], next: UInt64?) {
            self.connections = connections
            self.next = next
        }
    }

    struct Queued: Encodable {
        var id: UInt64
        var queued: Bool
    }

    struct Closing: Encodable {
        var id: UInt64
        var code: UInt16
        var closing: Bool
    }

    struct Topic: Encodable {
        var topic: String
        var subscribers: Int
    }

    struct Topics: Encodable {
        var topics: [Topic]
    }

    struct Presence: Encodable {
        struct Subscriber: Encodable {
            var id: UInt64
            var node: String?
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(id, forKey: .id)
                try container.encode(node, forKey: .node)
            }
            enum CodingKeys: String, CodingKey { case id, node }
        }
        var topic: String
        var subscribers: [Subscriber]
    }

    /// A user's or a tag's connections, cluster-wide (`GET /v1/users/{user}`, `GET /v1/tags/{tag}`).
    struct Addressee: Encodable {
        var user: String?
        var tag: String?
        var online: Bool
        var connections: [Presence.Subscriber]
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            if let user { try container.encode(user, forKey: .user) }
            if let tag { try container.encode(tag, forKey: .tag) }
            try container.encode(online, forKey: .online)
            try container.encode(connections.count, forKey: .count)
            try container.encode(connections, forKey: .connections)
        }
        enum CodingKeys: String, CodingKey { case user, tag, online, count, connections }
    }

    /// A send or close by user or tag (`POST /v1/users/{user}/send`, …): how many of the
    /// connections were on this node; the others' nodes carry it out through the cluster.
    struct AddressedAction: Encodable {
        var user: String?
        var tag: String?
        var action: String
        var here: Int
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            if let user { try container.encode(user, forKey: .user) }
            if let tag { try container.encode(tag, forKey: .tag) }
            try container.encode(action, forKey: .action)
            try container.encode(here, forKey: .here)
        }
        enum CodingKeys: String, CodingKey { case user, tag, action, here }
    }

    struct Overview: Encodable {
        struct Listener: Encodable {
            var name: String
            var address: String
            var tls: Bool
        }
        struct Route: Encodable {
            var name: String
            var path: String
            var kind: String
            var connections: Int
        }
        var node: String?
        var readiness: String
        var connections: Int
        var listeners: [Listener]
        var routes: [Route]
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(node, forKey: .node)
            try container.encode(readiness, forKey: .readiness)
            try container.encode(connections, forKey: .connections)
            try container.encode(listeners, forKey: .listeners)
            try container.encode(routes, forKey: .routes)
        }
        enum CodingKeys: String, CodingKey { case node, readiness, connections, listeners, routes }
    }

    /// `POST /v1/reload` applied: what changed.
    struct Reloaded: Encodable {
        var reloaded = true
        var changes: [String]
    }

    struct Status: Encodable {
        var readiness: String
        /// Always present: null when nothing is missing.
        var degraded: String?
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(readiness, forKey: .readiness)
            try container.encode(degraded, forKey: .degraded)
        }
        enum CodingKeys: String, CodingKey { case readiness, degraded }
    }

    struct Cluster: Encodable {
        struct Node: Encodable {
            var name: String
            var number: Int
        }
        var node: String
        var number: Int
        var linked: Bool
        var nodes: [Node]
    }

    /// `GET /v1/certificates`: every certificate kept by ACME (absent fields are null).
    struct Certificates: Encodable {
        struct Entry: Encodable {
            var listeners: [String]
            var domains: [String]
            var directory: String
            var state: String
            var notAfter: String?
            var nextAttempt: String?
            var issued: Int
            var failures: Int
            var lastError: String?

            enum CodingKeys: String, CodingKey {
                case listeners, domains, directory, state, issued, failures
                case notAfter = "not_after"
                case nextAttempt = "next_attempt"
                case lastError = "last_error"
            }

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(listeners, forKey: .listeners)
                try container.encode(domains, forKey: .domains)
                try container.encode(directory, forKey: .directory)
                try container.encode(state, forKey: .state)
                try container.encode(notAfter, forKey: .notAfter)
                try container.encode(nextAttempt, forKey: .nextAttempt)
                try container.encode(issued, forKey: .issued)
                try container.encode(failures, forKey: .failures)
                try container.encode(lastError, forKey: .lastError)
            }
        }
        var certificates: [Entry]

        init(statuses: [CertificateStatus]) {
            certificates = statuses.map { status in
                Entry(
                    listeners: status.listeners,
                    domains: status.domains,
                    directory: status.directory,
                    state: status.state.rawValue,
                    notAfter: status.notAfter.map(Self.timestamp),
                    nextAttempt: status.nextAttempt.map(Self.timestamp),
                    issued: status.issued,
                    failures: status.failures,
                    lastError: status.lastError
                )
            }
        }

        /// RFC 3339 in UTC, whole seconds.
        static func timestamp(_ date: Date) -> String {
            date.formatted(.iso8601)
        }
    }

    /// `POST /v1/certificates/renew`: the listeners whose certificate is being renewed.
    struct Renewing: Encodable {
        var listeners: [String]
    }

    /// A worker route (`GET /v1/routes/{name}`, and each of `GET /v1/routes`).
    struct WorkerRoute: Encodable {
        var status: WorkerRouteStatus

        enum CodingKeys: String, CodingKey { case route, command, args, instances, connections, deployment }
        enum InstanceKeys: String, CodingKey { case name, pid, state, connections }
        enum DeploymentKeys: String, CodingKey {
            case number, phase, command, args, from, to, moving, remaining, forced, error
            case startedAt = "started_at"
            case finishedAt = "finished_at"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(status.route, forKey: .route)
            try container.encode(status.command, forKey: .command)
            try container.encode(status.arguments, forKey: .args)
            try container.encode(status.connections, forKey: .connections)
            var instances = container.nestedUnkeyedContainer(forKey: .instances)
            for instance in status.instances {
                var entry = instances.nestedContainer(keyedBy: InstanceKeys.self)
                try entry.encode(instance.name, forKey: .name)
                try entry.encode(instance.pid, forKey: .pid)
                try entry.encode(instance.state.rawValue, forKey: .state)
                try entry.encode(instance.connections, forKey: .connections)
            }
            guard let deployment = status.deployment else {
                try container.encodeNil(forKey: .deployment)
                return
            }
            var entry = container.nestedContainer(keyedBy: DeploymentKeys.self, forKey: .deployment)
            try entry.encode(deployment.number, forKey: .number)
            try entry.encode(deployment.phase.rawValue, forKey: .phase)
            try entry.encode(deployment.command, forKey: .command)
            try entry.encode(deployment.arguments, forKey: .args)
            try entry.encode(deployment.from, forKey: .from)
            try entry.encode(deployment.to, forKey: .to)
            try entry.encode(deployment.moving, forKey: .moving)
            try entry.encode(deployment.remaining, forKey: .remaining)
            try entry.encode(deployment.forced, forKey: .forced)
            try entry.encode(AdminAPI.timestamp(millis: deployment.startedAt), forKey: .startedAt)
            try entry.encode(deployment.finishedAt.map(AdminAPI.timestamp(millis:)), forKey: .finishedAt)
            try entry.encode(deployment.error, forKey: .error)
        }
    }

    /// `GET /v1/routes`.
    struct WorkerRoutes: Encodable {
        var routes: [WorkerRoute]
    }
}

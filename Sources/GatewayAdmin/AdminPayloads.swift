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
}

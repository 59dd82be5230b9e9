import GatewayCore

/// `GET /v1/connections`'s query (docs/admin-api.yaml): which connections, how many, from
/// where, on this node or the whole cluster.
struct ConnectionQuery {
    var route: String?
    var topic: String?
    var user: String?
    var tag: String?
    var limit = AdminAPI.defaultPageSize
    var after: UInt64 = 0
    var wholeCluster = false

    init(_ query: [(String, String)]) throws(AdminError) {
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
                guard let parsed = Int(value), (1...AdminAPI.maxPageSize).contains(parsed) else {
                    throw AdminError.invalidField("limit", "limit is an integer from 1 to \(AdminAPI.maxPageSize)")
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
    }
}

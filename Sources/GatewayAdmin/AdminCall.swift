import NIOCore
import NIOHTTP1
import PercentEncoding

/// One admin request on its way to its endpoint: the path split into segments, the query, and
/// the checks every endpoint makes (method, no unexpected query).
struct AdminCall {
    let request: AdminRequest
    let path: String
    let query: [(String, String)]
    /// The path's segments after the leading `/`: `["v1", "connections", "7"]`.
    let segments: [String]
    let eventLoop: any EventLoop
    /// Sent here by another node of the cluster, which authorized it.
    let forwarded: Bool

    init(request: AdminRequest, eventLoop: any EventLoop, forwarded: Bool) {
        self.request = request
        (path, query) = AdminAPI.split(request.uri)
        segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
        self.eventLoop = eventLoop
        self.forwarded = forwarded
    }

    /// A segment percent-decoded: a route's, topic's, user's or tag's name.
    func decoded(_ index: Int) -> String {
        PercentDecoding.decode(segments[index]) ?? segments[index]
    }

    var noSuchEndpoint: AdminError { AdminError.notFound("no such endpoint: \(path)") }

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

    func noQuery() throws(AdminError) {
        try AdminAPI.noQuery(query)
    }
}

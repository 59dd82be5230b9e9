/// Finds the route for a request target. Exact paths only: a gateway's routes are few and
/// fixed, and an exact match cannot surprise anyone.
public struct RouteTable: Sendable {
    private let byPath: [String: RouteConfiguration]
    /// `static` routes, longest prefix first.
    private let folders: [RouteConfiguration]

    /// Whether a hub route asks for the browser client at `/wssgate.js` (`hub.client_script`).
    public let servesClientScript: Bool

    /// Where the browser client is served (docs/hub-protocol.md, wssgate.js).
    public static let clientScriptPath = "/wssgate.js"

    /// Every route, in the configuration's order.
    public let all: [RouteConfiguration]

    public init(_ routes: [RouteConfiguration]) {
        all = routes
        var byPath: [String: RouteConfiguration] = [:]
        for route in routes where route.isWebSocket { byPath[route.path] = route }
        self.byPath = byPath
        self.servesClientScript = routes.contains { route in
            if case .hub(let settings) = route.backend { settings.clientScript } else { false }
        }
        self.folders = routes.filter { !$0.isWebSocket }.sorted { $0.path.count > $1.path.count }
    }

    /// The WebSocket route for a request target such as `/echo?x=1`.
    public func route(forTarget target: String) -> RouteConfiguration? {
        byPath[Self.path(of: target)]
    }

    /// The `static` route whose prefix holds this path, and the path below that prefix.
    public func folder(forPath path: String) -> (RouteConfiguration, relative: String)? {
        for route in folders {
            let prefix = route.path.hasSuffix("/") ? String(route.path.dropLast()) : route.path
            if path == prefix || path.hasPrefix(prefix + "/") {
                return (route, String(path.dropFirst(prefix.count)))
            }
        }
        return nil
    }

    /// The path part of a request target (before `?` or `#`).
    public static func path(of target: String) -> String {
        var path = Substring(target)
        if let end = path.firstIndex(where: { $0 == "?" || $0 == "#" }) { path = path[..<end] }
        return String(path)
    }
}

/// Finds the route for a request target. Exact paths only: a gateway's routes are few and
/// fixed, and an exact match cannot surprise anyone.
public struct RouteTable: Sendable {
    private let byPath: [String: RouteConfiguration]

    public init(_ routes: [RouteConfiguration]) {
        var byPath: [String: RouteConfiguration] = [:]
        for route in routes { byPath[route.path] = route }
        self.byPath = byPath
    }

    /// The route for a request target such as `/echo?x=1`.
    public func route(forTarget target: String) -> RouteConfiguration? {
        byPath[Self.path(of: target)]
    }

    /// The path part of a request target (before `?` or `#`).
    public static func path(of target: String) -> String {
        var path = Substring(target)
        if let end = path.firstIndex(where: { $0 == "?" || $0 == "#" }) { path = path[..<end] }
        return String(path)
    }
}

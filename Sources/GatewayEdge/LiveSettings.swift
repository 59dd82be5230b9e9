import GatewayCore
import NIOConcurrencyHelpers

/// What a new connection reads when it arrives: the route table and the HTTP limits. A reload
/// swaps them in one step; connections already open keep what they started with.
public final class LiveSettings: Sendable {
    public struct Snapshot: Sendable {
        public var routes: RouteTable
        public var http: HTTPSettings
    }

    private let box: NIOLockedValueBox<Snapshot>

    public init(routes: [RouteConfiguration], http: HTTPSettings) {
        box = NIOLockedValueBox(Snapshot(routes: RouteTable(routes), http: http))
    }

    public var current: Snapshot { box.withLockedValue { $0 } }

    public func replace(routes: [RouteConfiguration], http: HTTPSettings) {
        box.withLockedValue { $0 = Snapshot(routes: RouteTable(routes), http: http) }
    }
}

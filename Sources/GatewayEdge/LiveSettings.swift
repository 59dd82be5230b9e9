import GatewayAuth
import GatewayCore
import GatewayWebSocket
import NIOConcurrencyHelpers

/// What a reload can change without a restart: routes, the services behind them, the HTTP
/// limits, and the token verifiers of routes with `auth`. Each request takes the snapshot
/// current when its head arrives; connections already upgraded keep the service they got.
public final class LiveSettings: Sendable {
    public struct Snapshot: Sendable {
        public var routes: RouteTable
        public var http: HTTPSettings
        /// By route name, for routes with `auth`.
        public var verifiers: [String: JWTVerifier]
        /// What serves each route, by route name (static routes have none).
        public var services: [String: any RouteService]
    }

    private let box: NIOLockedValueBox<Snapshot>

    public init(
        routes: [RouteConfiguration],
        http: HTTPSettings,
        verifiers: [String: JWTVerifier] = [:],
        services: [String: any RouteService] = [:]
    ) {
        box = NIOLockedValueBox(
            Snapshot(routes: RouteTable(routes), http: http, verifiers: verifiers, services: services)
        )
    }

    public var current: Snapshot { box.withLockedValue { $0 } }

    public func replace(
        routes: [RouteConfiguration],
        http: HTTPSettings,
        verifiers: [String: JWTVerifier],
        services: [String: any RouteService]
    ) {
        box.withLockedValue {
            $0 = Snapshot(routes: RouteTable(routes), http: http, verifiers: verifiers, services: services)
        }
    }

    /// Parses the keys of every route with `auth`; a key that does not load names its
    /// configuration key.
    public static func verifiers(
        for routes: [RouteConfiguration]
    ) async throws(ConfigurationError) -> [String: JWTVerifier] {
        var made: [String: JWTVerifier] = [:]
        for route in routes {
            guard let auth = route.auth else { continue }
            do {
                made[route.name] = try await JWTVerifier(settings: auth, routeKey: "routes.\(route.name).auth")
            } catch let error as JWTVerifier.KeyError {
                throw ConfigurationError(.invalidPEM, key: error.key, error.message)
            } catch {
                throw ConfigurationError(.invalidValue, key: "routes.\(route.name).auth", "\(error)")
            }
        }
        return made
    }
}

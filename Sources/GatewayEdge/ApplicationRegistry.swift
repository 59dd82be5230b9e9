import GatewayCore
import GatewayWebSocket

/// Maps a route to what serves its sessions. Route kinds beyond `echo` register here.
struct ApplicationRegistry: Sendable {
    private let echo = EchoApplication()

    func application(for route: RouteConfiguration) -> any WebSocketApplication {
        switch route.kind {
        case .echo: echo
        }
    }
}

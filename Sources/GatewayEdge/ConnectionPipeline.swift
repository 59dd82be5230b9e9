import GatewayCore
import GatewayMetrics
import GatewayWebSocket
import Logging
import NIOCore

/// The handlers a plain listener puts on each accepted connection, for a channel made
/// elsewhere: the HTTP fuzz target feeds `EmbeddedChannel`s through exactly what the network
/// reaches (request guard, NIO's HTTP/1.1 decoder, the gateway's handler, upgrade negotiation
/// and, after a 101, the WebSocket session). Everything but the channel is made once.
package struct ConnectionPipeline: Sendable {
    private let dependencies: HTTPConnectionHandler.Dependencies
    private let http: HTTPSettings
    /// What a test reads back: connections and sessions the pipeline still counts.
    package let state: GatewayState
    package let sessions: SessionDirectory

    /// A ready gateway's pipeline for `configuration`'s routes, served by `services`.
    package init(configuration: GatewayConfiguration, services: [String: any RouteService], logger: Logger) {
        let state = GatewayState()
        state.setPhase(.ready)
        let sessions = SessionDirectory()
        self.state = state
        self.sessions = sessions
        self.http = configuration.http
        self.dependencies = HTTPConnectionHandler.Dependencies(
            live: LiveSettings(routes: configuration.routes, http: configuration.http, services: services),
            state: state,
            logger: logger,
            drainSpread: configuration.server.drainSpread,
            sessions: sessions,
            metrics: GatewayMetrics(routes: configuration.routes.map(\.name), version: ""),
            limiter: ClientLimiter(settings: configuration.limits)
        )
    }

    /// Adds the handlers to `channel`, as the listener's child channel initializer does.
    package func configure(_ channel: any Channel) throws {
        try GatewayServer.configureConnection(
            channel: channel,
            listener: "pipeline",
            tls: nil,
            http: http,
            dependencies: dependencies,
            state: state
        )
    }
}

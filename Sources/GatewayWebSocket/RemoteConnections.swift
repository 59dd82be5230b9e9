import NIOWebSocket

/// Connections held by other gateways of a cluster, as a worker route reaches them: a worker
/// may send to or close any connection id it learned, wherever the connection landed. The
/// cluster link (GatewayCluster) implements it; outside a cluster there is none.
public protocol RemoteConnections: Sendable {
    /// Whether `id` belongs to another node (its node number is not ours).
    func isRemote(_ id: UInt64) -> Bool
    /// At most once: dropped when the owner cannot be reached.
    func send(_ message: WebSocketMessage, to id: UInt64)
    func close(_ id: UInt64, code: WebSocketErrorCode, reason: String)
}

import GatewayCore
import GatewayMetrics
import GatewayWebSocket
import NIOCore
import NIOWebSocket
import RedisClient

/// Workers' sends and closes for connections another node holds: a command on that node's
/// channel.
extension ClusterNode {
    // MARK: RemoteConnections (workers)

    public func isRemote(_ id: UInt64) -> Bool {
        let owner = ClusterSettings.nodeNumber(ofConnection: id)
        return owner != 0 && owner != settings.nodeNumber
    }

    public func send(_ message: WebSocketMessage, to id: UInt64) {
        var command = ClusterWire.Command(op: .send)
        command.connection = id
        command.kind = message.kind == .text ? "text" : "binary"
        command.body = ClusterWire.base64(message.data)
        deliver(command, to: ClusterSettings.nodeNumber(ofConnection: id))
    }

    public func close(_ id: UInt64, code: WebSocketErrorCode, reason: String) {
        var command = ClusterWire.Command(op: .close)
        command.connection = id
        command.code = code.code
        command.reason = reason
        deliver(command, to: ClusterSettings.nodeNumber(ofConnection: id))
    }

    fileprivate func deliver(_ command: ClusterWire.Command, to node: Int) {
        guard let connection else {
            metrics.lost(backlog: false)
            return
        }
        connection.sendWithoutWaiting([
            ByteBuffer(string: "PUBLISH"), ByteBuffer(string: nodeChannel(node)), command.encoded(),
        ])
    }
}

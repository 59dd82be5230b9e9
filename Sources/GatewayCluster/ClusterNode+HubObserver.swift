import GatewayCore
import GatewayHub
import GatewayMetrics
import GatewayWebSocket
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOWebSocket
import RedisClient
import ServiceLifecycle

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What the hub tells the cluster link: publishes go to the other nodes through Redis (dropped
/// and counted past `maxOutstandingBytes`), closes of a user's or tag's connections reach every
/// node, and subscriptions are this node's presence.
extension ClusterNode {
    public func hub(published message: HubMessage, to topic: String) {
        guard let connection else {
            metrics.lost(backlog: false)
            return
        }
        let envelope = ClusterWire.encodePublish(message, origin: settings.nodeNumber)
        let size = envelope.readableBytes
        let admitted = state.withLockedValue { state -> Bool in
            guard state.outstandingBytes + size <= Self.maxOutstandingBytes else { return false }
            state.outstandingBytes += size
            return true
        }
        guard admitted else {
            metrics.lost(backlog: true)
            return
        }
        metrics.forwarded()
        connection.sendWithoutWaiting([
            ByteBuffer(string: "PUBLISH"), ByteBuffer(string: topicChannel(topic)), envelope,
        ]) { [weak self] result in
            guard let self else { return }
            self.state.withLockedValue { $0.outstandingBytes -= size }
            if case .failure = result { self.metrics.lost(backlog: false) }
        }
    }

    public func hub(closedSubscribersOf topic: String, code: UInt16, reason: String) {
        guard let connection else {
            metrics.lost(backlog: false)
            return
        }
        connection.sendWithoutWaiting([
            ByteBuffer(string: "PUBLISH"), ByteBuffer(string: topicChannel(topic)),
            ClusterWire.encodeClose(code: code, reason: reason, origin: settings.nodeNumber),
        ])
    }

    public func hub(subscribed subscriberID: UInt64, to topic: String) {
        guard let connection else { return }  // restored by `register` on reconnect
        let key = presenceKey(topic, node: settings.node)
        connection.sendWithoutWaiting(["SADD", key, String(subscriberID)].map { ByteBuffer(string: $0) })
        connection.sendWithoutWaiting(["PEXPIRE", key, ttlMillis].map { ByteBuffer(string: $0) })
    }

    public func hub(unsubscribed subscriberID: UInt64, from topics: [String]) {
        guard let connection else { return }
        for topic in topics {
            connection.sendWithoutWaiting(
                ["SREM", presenceKey(topic, node: settings.node), String(subscriberID)].map { ByteBuffer(string: $0) }
            )
        }
    }
}

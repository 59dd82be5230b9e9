import GatewayCore
import NIOConcurrencyHelpers
import NIOCore
import RedisClient

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Admin requests for connections another node holds, and what the admin API asks of the
/// cluster as a whole (its live nodes, presence on every node).
extension ClusterNode {
    // MARK: Requests to other nodes (admin API)

    /// Sends an admin request to the node with `number` and waits for its answer.
    public func forward(_ request: ForwardedRequest, toNode number: Int) -> EventLoopFuture<ForwardedResponse> {
        guard let connection else {
            return loop.makeFailedFuture(
                ClusterError(.linkDown, "the cluster link is down: node \(number) cannot be reached")
            )
        }
        let promise = loop.makePromise(of: ForwardedResponse.self)
        let timeout = settings.requestTimeout
        let id = state.withLockedValue { state -> UInt64 in
            state.nextRequest += 1
            let id = state.nextRequest
            let timer = loop.scheduleTask(in: timeout) { [weak self] in
                guard let self, let entry = self.state.withLockedValue({ $0.pending.removeValue(forKey: id) }) else {
                    return
                }
                entry.promise.fail(
                    ClusterError(.timeout, "node \(number) did not answer within \(timeout.nanoseconds / 1_000_000) ms")
                )
            }
            state.pending[id] = (promise, timer)
            return id
        }
        var command = ClusterWire.Command(op: .request)
        command.request = id
        command.from = settings.nodeNumber
        command.method = request.method
        command.uri = request.uri
        command.body = ClusterWire.base64(request.body)
        connection.sendWithoutWaiting([
            ByteBuffer(string: "PUBLISH"), ByteBuffer(string: nodeChannel(number)), command.encoded(),
        ]) { [weak self] result in
            // PUBLISH answers how many subscribers got it: 0 means no such node is listening.
            guard let self else { return }
            let receivers = (try? result.get())?.integer ?? 0
            guard receivers == 0 else { return }
            if let entry = self.state.withLockedValue({ $0.pending.removeValue(forKey: id) }) {
                entry.timer.cancel()
                entry.promise.fail(ClusterError(.noSuchNode, "no live node has number \(number)"))
            }
        }
        return promise.futureResult
    }

    /// The live nodes (number and name), this one included.
    public func liveNodes() async throws -> [(number: Int, name: String)] {
        guard let connection else { throw ClusterError(.linkDown, "the cluster link is down") }
        let reply = try await connection.send(["ZRANGEBYSCORE", nodesKey, String(Self.nowMillis()), "+inf"])
        return (reply.elements ?? []).compactMap { value in
            guard let text = value.string, let slash = text.firstIndex(of: "/"), let number = Int(text[..<slash]) else {
                return nil
            }
            return (number, String(text[text.index(after: slash)...]))
        }.sorted { $0.number < $1.number }
    }

    /// Who is subscribed to `topic` (or to the pattern `topic`), on every live node.
    public func subscriberCount(of topic: String) async throws -> Int {
        try await presence(of: topic).reduce(0) { $0 + $1.ids.count }
    }

    public func presence(of topic: String) async throws -> [(node: String, ids: [UInt64])] {
        guard let connection else { throw ClusterError(.linkDown, "the cluster link is down") }
        var result: [(node: String, ids: [UInt64])] = []
        for node in try await liveNodes() {
            let members = try await connection.send(["SMEMBERS", presenceKey(topic, node: node.name)])
            let ids = (members.elements ?? []).compactMap { $0.string.flatMap(UInt64.init) }.sorted()
            result.append((node.name, ids))
        }
        return result
    }
}

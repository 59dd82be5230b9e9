import NIOCore

/// What the admin API may ask of the cluster this gateway is a node of: who the nodes are, where a
/// connection lives, presence, and requests answered by another node. Kept here so the admin API
/// need not know how the cluster works (Redis, its keys and channels).
public protocol ClusterAdministration: AnyObject, Sendable {
    /// This node's name (`cluster.node`) and number.
    var name: String { get }
    var number: Int { get }
    /// Whether the node's Redis link is up now.
    var isLinked: Bool { get }
    /// Whether a connection id names a connection on another node.
    func isRemote(_ id: UInt64) -> Bool
    /// The live nodes, this one among them.
    func liveNodes() async throws -> [(number: Int, name: String)]
    /// A topic's subscribers on every node: each node's name and its connections' ids.
    func presence(of topic: String) async throws -> [(node: String, ids: [UInt64])]
    /// Sends an admin request to another node and completes with its answer (a `ClusterError`
    /// when there is none).
    func forward(_ request: ForwardedRequest, toNode number: Int) -> EventLoopFuture<ForwardedResponse>
    /// Who answers admin requests forwarded from other nodes.
    func setRequestHandler(
        _ handler: @escaping @Sendable (ForwardedRequest, any EventLoop) -> EventLoopFuture<ForwardedResponse>
    )
}

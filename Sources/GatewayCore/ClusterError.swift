/// Why a request to another node got no answer.
public struct ClusterError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// Redis cannot be reached from here.
        case linkDown = "cluster_link_down"
        /// No live node has that number (it died, or never was).
        case noSuchNode = "no_such_node"
        /// The node did not answer within `cluster.request_timeout`.
        case timeout = "node_timeout"
        /// Another live node has this node's number.
        case nodeNumberTaken = "node_number_taken"
    }
    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "\(code.rawValue): \(message)" }
}

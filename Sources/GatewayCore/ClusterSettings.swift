import NIOCore

/// Several gateways sharing topics and connections through Redis (docs/cluster.md). Off unless
/// `cluster.redis` is set: one gateway needs nothing but itself.
public struct ClusterSettings: Sendable, Equatable {
    /// What `/readyz` says while Redis cannot be reached. Local delivery goes on either way.
    public enum DegradedReadiness: String, Sendable, CaseIterable {
        /// 200, with "degraded" in the body: a load balancer keeps sending clients, which still
        /// reach every subscriber on this node.
        case ready
        /// 503: a load balancer sends new clients to nodes that reach the cluster.
        case unready
    }

    public static let defaultPresenceTTL = TimeAmount.seconds(15)
    /// Node numbers go in the top bits of connection ids (below 2^53, so JavaScript can hold
    /// every id exactly): 10 bits.
    public static let maxNodeNumber = 1023

    /// `redis://[user:password@]host:port/db` or `unix:/path?db=N` (checked by the loader).
    public var redis: String
    /// This gateway's name in the cluster: unique among the nodes.
    public var node: String
    /// 1…1023: the top bits of this node's connection ids. Derived from `node` unless set;
    /// two live nodes with the same number refuse to share a cluster (the second is told).
    public var nodeNumber: Int
    /// Presence entries (and this node's registration) expire this long after the node last
    /// refreshed them — how long a node that died without saying goodbye still shows.
    public var presenceTTL: TimeAmount
    public var degradedReadiness: DegradedReadiness
    /// How long a command to another node waits for its answer (admin API).
    public var requestTimeout: TimeAmount
    /// Prefix of every Redis key and channel, so that several clusters can share one Redis.
    public var prefix: String

    public init(
        redis: String,
        node: String,
        nodeNumber: Int? = nil,
        presenceTTL: TimeAmount = ClusterSettings.defaultPresenceTTL,
        degradedReadiness: DegradedReadiness = .ready,
        requestTimeout: TimeAmount = .seconds(2),
        prefix: String = "wssgate"
    ) {
        self.redis = redis
        self.node = node
        self.nodeNumber = nodeNumber ?? Self.nodeNumber(for: node)
        self.presenceTTL = presenceTTL
        self.degradedReadiness = degradedReadiness
        self.requestTimeout = requestTimeout
        self.prefix = prefix
    }

    /// FNV-1a of the name, folded into 1…1023: stable across restarts and machines.
    public static func nodeNumber(for name: String) -> Int {
        var hash: UInt32 = 2_166_136_261
        for byte in name.utf8 {
            hash ^= UInt32(byte)
            hash = hash &* 16_777_619
        }
        return Int(hash % UInt32(maxNodeNumber)) + 1
    }

    /// Bits below the node number in a connection id.
    public static let connectionBits = 42

    /// The node number in a connection id (0: made by a gateway outside any cluster).
    public static func nodeNumber(ofConnection id: UInt64) -> Int {
        Int(id >> UInt64(connectionBits))
    }

    /// Whether a node name is usable in Redis keys and channels and in logs.
    public static func isValidNodeName(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count)
            && name.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                    || byte == 0x2D || byte == 0x2E || byte == 0x5F
            }
    }
}

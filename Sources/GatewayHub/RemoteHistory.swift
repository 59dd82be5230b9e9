import GatewayCore
import GatewayWebSocket
import NIOCore

/// One recorded publication: its offset in its topic's stream and the message as published.
public struct HistoryEntry: Sendable {
    public var offset: UInt64
    public var message: HubMessage

    public init(offset: UInt64, message: HubMessage) {
        self.offset = offset
        self.message = message
    }
}

/// What a subscribe (or the admin API) learns from a topic's history: where the stream stands
/// and, for a resume, whether every publication after the client's position is in `entries`.
public struct HistoryRecovery: Sendable {
    /// nil when no resume was asked for.
    public var recovered: Bool?
    public var entries: [HistoryEntry]
    public var position: StreamPosition

    public init(recovered: Bool?, entries: [HistoryEntry], position: StreamPosition) {
        self.recovered = recovered
        self.entries = entries
        self.position = position
    }
}

/// An append whose answer did not come: the history may have recorded the publication or not
/// (the request went out; its answer, or the link, did not come back). A publisher that wants each
/// publication once reads the history from its last position before it publishes again.
public struct UndecidedAppend: Error, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// A topic history kept elsewhere, shared by several gateways: in a cluster, Redis
/// (GatewayCluster). It hands out positions and delivers every publication back to every node,
/// its own included, in offset order (`Hub.deliverRecorded`), so that a client that moves to
/// another node resumes there.
public protocol RemoteHistory: AnyObject, Sendable {
    /// Records `message` on `topic`; the future holds its position once recorded.
    func append(
        _ message: HubMessage,
        to topic: String,
        settings: HistorySettings
    ) -> EventLoopFuture<StreamPosition>

    /// Where `topic` stands, and with `since` the publications after it (all of them, or
    /// `recovered == false`). Its answer comes after every delivery of a publication recorded
    /// before it was asked (the seam's rule, docs/hub-protocol.md).
    func recover(_ topic: String, since: StreamPosition?, settings: HistorySettings) -> EventLoopFuture<HistoryRecovery>

    /// Every publication still kept on `topic` (`recovered` nil).
    func kept(_ topic: String, settings: HistorySettings) -> EventLoopFuture<HistoryRecovery>
}

import NIOConcurrencyHelpers

/// Connection ids, unique within the gateway process and never reused: the same id names a
/// connection in the access log, to its worker, in the hub and in the admin API.
///
/// In a cluster the node's number is in the top bits (`base`), so an id says which node holds
/// the connection; every id stays below 2^53, which JavaScript numbers hold exactly.
public final class ConnectionIDs: Sendable {
    private let counter = NIOLockedValueBox<UInt64>(0)
    public let base: UInt64

    public init(base: UInt64 = 0) {
        self.base = base
    }

    public func next() -> UInt64 {
        counter.withLockedValue {
            $0 += 1
            return base | $0
        }
    }
}

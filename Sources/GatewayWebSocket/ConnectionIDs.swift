import NIOConcurrencyHelpers

/// Connection ids, unique within the gateway process and never reused: the same id names a
/// connection in the access log, to its worker, in the hub and in the admin API.
public final class ConnectionIDs: Sendable {
    private let counter = NIOLockedValueBox<UInt64>(0)
    public init() {}
    public func next() -> UInt64 { counter.withLockedValue { $0 += 1; return $0 } }
}

import NIOConcurrencyHelpers

/// Connection ids, unique within the gateway process: worker connections and hub clients share
/// the hub, so they share the numbering.
public final class ConnectionIDs: Sendable {
    private let counter = NIOLockedValueBox<UInt64>(0)
    public init() {}
    public func next() -> UInt64 { counter.withLockedValue { $0 += 1; return $0 } }
}

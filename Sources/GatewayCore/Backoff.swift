import NIOCore

/// Exponential backoff with full jitter: the n-th retry waits a random time up to
/// `min(maximum, initial × 2ⁿ)`, so many gateways (or instances) do not retry in step.
public struct Backoff: Sendable {
    public var initial: TimeAmount
    public var maximum: TimeAmount
    public private(set) var attempt = 0

    public init(initial: TimeAmount = .milliseconds(50), maximum: TimeAmount = .seconds(5)) {
        self.initial = initial
        self.maximum = maximum
    }

    public mutating func next() -> TimeAmount {
        let ceiling = min(maximum.nanoseconds, initial.nanoseconds << min(attempt, 30))
        attempt += 1
        return .nanoseconds(Int64.random(in: (ceiling / 2)...max(ceiling / 2, ceiling)))
    }

    public mutating func reset() { attempt = 0 }
}

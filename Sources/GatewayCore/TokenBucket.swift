import NIOCore

/// A token bucket: `burst` tokens at most, refilled at `rate` per second. The caller passes the
/// time, so the same type meters connections per address (`ClientLimiter`) and messages per
/// session, and its tests choose the clock.
public struct TokenBucket: Sendable, Equatable {
    /// Tokens per second; 0 means no limit.
    public var rate: Double
    public var burst: Double
    public private(set) var tokens: Double
    public private(set) var refilled: NIODeadline

    /// Starts full.
    public init(rate: Double, burst: Double, now: NIODeadline) {
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.refilled = now
    }

    /// Takes one token if there is one.
    public mutating func take(now: NIODeadline) -> Bool {
        guard rate > 0 else { return true }
        refill(now: now)
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }

    /// Takes `amount` tokens whether or not they are there: the bucket may go into debt, which
    /// `wait(now:)` then counts (bytes inflated, where a frame's cost is known only once done).
    public mutating func spend(_ amount: Double, now: NIODeadline) {
        guard rate > 0 else { return }
        refill(now: now)
        tokens -= amount
    }

    /// How long until the next token is there (zero when there is one now).
    public func wait(now: NIODeadline) -> TimeAmount {
        guard rate > 0 else { return .zero }
        let available = level(now: now)
        guard available < 1 else { return .zero }
        return .nanoseconds(Int64(((1 - available) / rate * 1e9).rounded(.up)))
    }

    /// Whether the bucket has refilled completely: one that nobody used for that long is as new.
    public func isFull(now: NIODeadline) -> Bool {
        rate <= 0 || level(now: now) >= burst
    }

    private func level(now: NIODeadline) -> Double {
        let elapsed = Double(max(0, (now - refilled).nanoseconds)) / 1e9
        return min(burst, tokens + elapsed * rate)
    }

    private mutating func refill(now: NIODeadline) {
        tokens = level(now: now)
        refilled = max(refilled, now)
    }
}

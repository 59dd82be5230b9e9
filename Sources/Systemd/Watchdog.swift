/// `WATCHDOG_USEC` / `WATCHDOG_PID`: how often systemd expects `WATCHDOG=1`, if at all.
public struct WatchdogSettings: Sendable, Equatable {
    /// Interval systemd waits for; pings go at half of it.
    public let intervalMicroseconds: UInt64

    public init?(environment: [String: String], pid: Int32) {
        guard let text = environment["WATCHDOG_USEC"], let usec = UInt64(text), usec > 0 else { return nil }
        if let owner = environment["WATCHDOG_PID"], Int32(owner) != pid { return nil }
        intervalMicroseconds = usec
    }

    public var pingIntervalNanoseconds: UInt64 { intervalMicroseconds * 500 }
}

import NIOCore

/// How long a connection that lost its instance has left to find one that keeps it
/// (`worker.resume_timeout`). The count starts when the connection loses an instance that had
/// held it for at least the timeout; an instance that takes it and dies at once does not start it
/// again. Otherwise a worker that breaks its link right after every hello would keep its clients
/// connected and unserved for ever, each new link buying them another full timeout.
///
/// A value: the connection passes the times of its events, and the window reads no clock.
struct ResumeWindow {
    /// When the count began: the loss of the last instance that kept the connection.
    private var start: NIODeadline?
    private var attachedAt: NIODeadline?
    /// The last loss, and how long the instance lost then had held the connection.
    private var lost: (at: NIODeadline, held: TimeAmount?)?

    /// An instance took the connection.
    mutating func attached(now: NIODeadline) {
        attachedAt = now
    }

    /// The connection's instance went away.
    mutating func lost(now: NIODeadline) {
        lost = (now, attachedAt.map { now - $0 })
        attachedAt = nil
    }

    /// What is left of `timeout` for an instance to take the connection (zero: none left). A
    /// connection that never lost an instance has all of it.
    mutating func remaining(of timeout: TimeAmount, now: NIODeadline) -> TimeAmount {
        guard let lost else { return timeout }
        if start == nil || (lost.held ?? .zero) >= timeout { start = lost.at }
        // Decided for this loss: asking again until the next one changes nothing.
        self.lost = (lost.at, .zero)
        return max(.zero, start! + timeout - now)
    }
}

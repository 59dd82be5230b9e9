import NIOCore

extension EventLoop {
    /// Runs `body` at once when called on this loop, and as a task on it otherwise.
    ///
    /// What a link, the hub or another loop hands a connection runs on the connection's loop;
    /// from the loop itself a task would cost an allocation and a queue round trip on the
    /// busiest paths, and calls made from one thread keep their order either way.
    @inlinable
    public func runOnLoop(_ body: @escaping @Sendable () -> Void) {
        if inEventLoop {
            body()
        } else {
            execute(body)
        }
    }
}

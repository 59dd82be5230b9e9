import NIOCore

extension EventLoopFuture where Value == Void {
    /// Waits for this future instead of asking a condition again and again: true once it
    /// succeeds, false when it fails, when `timeout` passes first or when the waiting task is
    /// cancelled. What the gateway waits for at start and on reload (a worker pool's first link)
    /// is an event, so nothing polls.
    /// Without `timeout`, it waits for the event or the cancellation only.
    public func succeeds(within timeout: TimeAmount?) async -> Bool {
        let promise = eventLoop.makePromise(of: Bool.self)
        // A promise completed twice keeps its first value: whichever comes first decides.
        let timer = timeout.map { eventLoop.scheduleTask(in: $0) { promise.succeed(false) } }
        whenComplete { result in
            if case .success = result { promise.succeed(true) } else { promise.succeed(false) }
        }
        return await withTaskCancellationHandler {
            let succeeded = (try? await promise.futureResult.get()) ?? false
            timer?.cancel()
            return succeeded
        } onCancel: {
            promise.succeed(false)
        }
    }
}

import NIOCore
import NIOPosix

/// Runs async code to its end from synchronous code: a fuzz input is one synchronous call, and
/// some parsers (the JWT verifier) are async. The work runs on NIO's shared event loop group;
/// the caller's thread, never an event loop, waits.
enum BlockingAsync {
    static func run<Result: Sendable>(_ body: @escaping @Sendable () async -> Result) -> Result {
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        // A failed future is impossible: the body does not throw.
        return try! loop.makeFutureWithTask(body).wait()
    }
}

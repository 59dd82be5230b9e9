import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import XCTest

@testable import GatewayWorkers

/// The pool's "something changed": each beat ends the waits taken before it, not later ones,
/// and once the pool stopped no wait lasts.
final class PulseTests: XCTestCase {
    func testABeatEndsTheWaitsTakenBeforeIt() throws {
        let loop = EmbeddedEventLoop()
        let pulse = Pulse()
        let heard = NIOLockedValueBox(0)
        pulse.next(on: loop).whenSuccess { heard.withLockedValue { $0 += 1 } }
        pulse.next(on: loop).whenSuccess { heard.withLockedValue { $0 += 1 } }
        loop.run()
        XCTAssertEqual(heard.withLockedValue { $0 }, 0)
        pulse.beat()
        loop.run()
        XCTAssertEqual(heard.withLockedValue { $0 }, 2)
        pulse.next(on: loop).whenSuccess { heard.withLockedValue { $0 += 10 } }
        loop.run()
        XCTAssertEqual(heard.withLockedValue { $0 }, 2, "a wait taken after the beat waits for the next")
        pulse.end()
        loop.run()
        XCTAssertEqual(heard.withLockedValue { $0 }, 12)
        XCTAssertNoThrow(try pulse.next(on: loop).wait(), "ended: at once")
        try loop.syncShutdownGracefully()
    }

    func testAWaitThatGaveUpIsNotLeaked() throws {
        let loop = EmbeddedEventLoop()
        var pulse: Pulse? = Pulse()
        let abandoned = pulse!.next(on: loop)
        pulse = nil
        loop.run()
        XCTAssertNoThrow(try abandoned.wait(), "completed when the pulse goes")
        try loop.syncShutdownGracefully()
    }
}

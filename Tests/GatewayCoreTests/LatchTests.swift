import GatewayCore
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import XCTest

/// An event to wait for (a pool's first link): waiters before and after the opening both hear it, and
/// a pool that stops first fails them rather than leaving them waiting.
final class LatchTests: XCTestCase {
    func testWaitersBeforeAndAfterTheOpeningSucceed() throws {
        let loop = EmbeddedEventLoop()
        let latch = Latch()
        let heard = NIOLockedValueBox(false)
        latch.whenOpen(on: loop).whenSuccess { heard.withLockedValue { $0 = true } }
        XCTAssertFalse(latch.isOpen)
        loop.run()
        XCTAssertFalse(heard.withLockedValue { $0 })
        latch.open()
        loop.run()
        XCTAssertTrue(heard.withLockedValue { $0 })
        XCTAssertTrue(latch.isOpen)
        XCTAssertNoThrow(try latch.whenOpen(on: loop).wait(), "open for good")
        latch.end()
        XCTAssertNoThrow(try latch.whenOpen(on: loop).wait(), "an end after the opening changes nothing")
        try loop.syncShutdownGracefully()
    }

    func testAnEndBeforeTheOpeningFailsEveryWaiter() throws {
        let loop = EmbeddedEventLoop()
        let latch = Latch()
        let early = latch.whenOpen(on: loop)
        latch.end()
        loop.run()
        XCTAssertThrowsError(try early.wait())
        XCTAssertThrowsError(try latch.whenOpen(on: loop).wait())
        latch.open()
        XCTAssertFalse(latch.isOpen, "what it stood for can no longer happen")
        try loop.syncShutdownGracefully()
    }

    func testALatchMadeOpenNeedsNoEvent() throws {
        let loop = EmbeddedEventLoop()
        XCTAssertNoThrow(try Latch(open: true).whenOpen(on: loop).wait())
        try loop.syncShutdownGracefully()
    }
}

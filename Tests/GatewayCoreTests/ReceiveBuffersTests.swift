import GatewayCore
import NIOCore
import XCTest

final class ReceiveBuffersTests: XCTestCase {
    func testStartsSmall() {
        let allocator = ReceiveBuffers.connection
        XCTAssertEqual(allocator.nextBufferSize(), ReceiveBuffers.initial)
        XCTAssertLessThan(ReceiveBuffers.initial, 2048)
    }

    /// A connection that fills its buffer gets larger reads at once: small to start with does not
    /// mean small reads for a busy client.
    func testGrowsWhenReadsFillTheBuffer() {
        var allocator = ReceiveBuffers.connection
        var size = allocator.nextBufferSize() ?? 0
        for _ in 0..<10 {
            _ = allocator.record(actualReadBytes: size)
            size = allocator.nextBufferSize() ?? 0
        }
        XCTAssertEqual(size, ReceiveBuffers.maximum)
    }
}

import PercentEncoding
import XCTest

final class PercentDecodingTests: XCTestCase {
    func testStrictAndFormStyle() {
        XCTAssertEqual(PercentDecoding.decode("a%20b+c"), "a b+c")
        XCTAssertEqual(PercentDecoding.decode("a%20b+c", plusAsSpace: true), "a b c")
        XCTAssertNil(PercentDecoding.decode("bad%2"), "a cut escape")
        XCTAssertNil(PercentDecoding.decode("bad%zz"))
        XCTAssertNil(PercentDecoding.decode("%FF%FE"), "not UTF-8")
        XCTAssertEqual(PercentDecoding.decode("%E2%82%AC"), "€")
        XCTAssertEqual(PercentDecoding.decode("%e2%82%ac"), "€")
    }

    /// Found by the percent-decoding fuzz target: `UInt8("+f", radix: 16)` is 15, so "%+f" was
    /// read as an escape, and a static path or a query could carry a byte its text did not show.
    func testASignIsNotAHexDigit() {
        XCTAssertNil(PercentDecoding.decode("%+f"))
        XCTAssertNil(PercentDecoding.decode("%-1"))
        XCTAssertEqual(PercentDecoding.queryPairs(of: "/x?a=%+f").map(\.value), ["%+f"], "kept as it was sent")
    }

    func testQueryPairs() {
        let pairs = PercentDecoding.queryPairs(of: "/x?a=1&b=two+words&flag&c=%zz#frag")
        XCTAssertEqual(pairs.map(\.name), ["a", "b", "flag", "c"])
        XCTAssertEqual(pairs.map(\.value), ["1", "two words", "", "%zz"])
        XCTAssertTrue(PercentDecoding.queryPairs(of: "/x").isEmpty)
    }
}

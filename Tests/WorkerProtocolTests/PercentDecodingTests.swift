import WorkerProtocol
import XCTest

final class PercentDecodingTests: XCTestCase {
    func testStrictAndFormStyle() {
        XCTAssertEqual(PercentDecoding.decode("a%20b+c"), "a b+c")
        XCTAssertEqual(PercentDecoding.decode("a%20b+c", plusAsSpace: true), "a b c")
        XCTAssertNil(PercentDecoding.decode("bad%2"), "a cut escape")
        XCTAssertNil(PercentDecoding.decode("bad%zz"))
        XCTAssertNil(PercentDecoding.decode("%FF%FE"), "not UTF-8")
        XCTAssertEqual(PercentDecoding.decode("%E2%82%AC"), "€")
    }

    func testQueryPairs() {
        let pairs = PercentDecoding.queryPairs(of: "/x?a=1&b=two+words&flag&c=%zz#frag")
        XCTAssertEqual(pairs.map(\.name), ["a", "b", "flag", "c"])
        XCTAssertEqual(pairs.map(\.value), ["1", "two words", "", "%zz"])
        XCTAssertTrue(PercentDecoding.queryPairs(of: "/x").isEmpty)
    }
}

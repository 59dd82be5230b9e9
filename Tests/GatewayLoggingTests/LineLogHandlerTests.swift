import Foundation
import GatewayLogging
import Logging
import XCTest

final class LineLogHandlerTests: XCTestCase {
    func testLogfmtQuotesWhatNeedsQuoting() {
        let line = LineLogHandler.render(
            format: .logfmt,
            timestamp: "T",
            level: .info,
            label: "wssgate",
            message: "websocket closed",
            metadata: ["peer": "127.0.0.1:5", "reason": "a \"quoted\" = thing\n", "empty": ""]
        )
        XCTAssertEqual(
            line,
            #"ts=T level=info logger=wssgate msg="websocket closed" empty="" peer=127.0.0.1:5 reason="a \"quoted\" = thing\n""#
        )
    }

    func testJSONIsValidAndTyped() throws {
        let line = LineLogHandler.render(
            format: .json,
            timestamp: "T",
            level: .warning,
            label: "wssgate",
            message: "tab\there",
            metadata: ["count": .stringConvertible(3), "name": "x\"y", "list": .array(["a", "b"])]
        )
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(object["msg"] as? String, "tab\there")
        XCTAssertEqual(object["count"] as? Int, 3)
        XCTAssertEqual(object["name"] as? String, "x\"y")
        XCTAssertEqual(object["level"] as? String, "warning")
        XCTAssertEqual(object["list"] as? [String], ["a", "b"])
    }

    func testHandlerWritesThroughItsSinkAndHonoursTheLevel() {
        let memory = LogSink.Memory()
        var logger = Logger(label: "t") { LineLogHandler(label: $0, format: .logfmt, level: .info, sink: memory.sink) }
        logger[metadataKey: "route"] = "echo"
        logger.debug("hidden")
        logger.info("shown", metadata: ["n": "1"])
        XCTAssertEqual(memory.lines.count, 1)
        XCTAssertTrue(memory.lines[0].hasSuffix("level=info logger=t msg=shown n=1 route=echo"), memory.lines[0])
    }
}

import Logging
import NIOConcurrencyHelpers
import XCTest

@testable import GatewayLogging

#if canImport(Glibc)
import Glibc
#endif

/// Lines with their priorities for the journal, and values that keep their JSON type.
final class LogSinkTests: XCTestCase {
    func testEveryLevelHasItsSyslogPriority() {
        let priorities = Logger.Level.allCases.map(LogSink.syslogPriority)
        XCTAssertEqual(priorities, [7, 7, 6, 5, 4, 3, 2])
    }

    /// Standard error, replaced by a pipe for the test: with priorities each line starts with
    /// `<N>`, which journald takes as the line's priority and removes.
    func testStandardErrorPrefixesThePriorityOnlyWhenAskedTo() throws {
        var ends: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&ends), 0)
        let saved = dup(2)
        dup2(ends[1], 2)
        LogSink.standardError(syslogPriorities: true).write("{\"msg\":\"down\"}", level: .error)
        LogSink.standardError(syslogPriorities: true).write("up", level: .info)
        LogSink.standardError(syslogPriorities: false).write("plain", level: .error)
        dup2(saved, 2)
        close(saved)
        close(ends[1])
        var bytes = [UInt8](repeating: 0, count: 256)
        let count = read(ends[0], &bytes, bytes.count)
        close(ends[0])
        XCTAssertEqual(
            String(decoding: bytes[0..<max(count, 0)], as: UTF8.self),
            "<3>{\"msg\":\"down\"}\n<6>up\nplain\n"
        )
    }

    func testTheHandlerPassesEachLinesLevelToTheSink() {
        let seen = NIOLockedValueBox<[Logger.Level]>([])
        let handler = LineLogHandler(
            label: "t",
            live: LiveLogSettings(level: .debug, format: .json),
            sink: LogSink(leveled: { level, _ in seen.withLockedValue { $0.append(level) } })
        )
        let logger = Logger(label: "t") { _ in handler }
        logger.warning("w")
        logger.error("e")
        XCTAssertEqual(seen.withLockedValue { $0 }, [.warning, .error])
    }

    /// Numbers and flags pass the redactor as they are, so JSON lines keep them numbers.
    func testNumbersAndFlagsStayNumbersAndFlagsInJSON() {
        let memory = LogSink.Memory()
        let handler = LineLogHandler(label: "t", format: .json, level: .info, sink: memory.sink)
        let logger = Logger(label: "t") { _ in handler }
        logger.info(
            "values",
            metadata: ["pid": .stringConvertible(9572), "tls": .stringConvertible(true), "name": .string("9572")]
        )
        XCTAssertTrue(memory.lines[0].hasSuffix(",\"name\":\"9572\",\"pid\":9572,\"tls\":true}"), memory.lines[0])
    }
}

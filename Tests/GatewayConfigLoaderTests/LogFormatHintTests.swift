import Foundation
import GatewayCore
import XCTest

@testable import GatewayConfigLoader

/// The log format a command reports in before (or without) a configuration that loads.
final class LogFormatHintTests: XCTestCase {
    private func file(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hint-\(UUID().uuidString).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testTheFileSaysWhenItParses() throws {
        let path = try file("log:\n  format: json\nroutes:\n  x:\n    kind: nonsense\n")
        XCTAssertEqual(LogFormatHint.format(filePath: path, environment: [:], overrides: []), .json)
    }

    func testAFileLibyamlRefusesIsScannedLineByLine() throws {
        let duplicate = try file("server:\n  a: 1\nlog:   # ours\n  level: info\n  format: \"json\"\nserver:\n  b: 2\n")
        XCTAssertEqual(LogFormatHint.format(filePath: duplicate, environment: [:], overrides: []), .json)
        XCTAssertNil(LogFormatHint.scannedFormat(in: "other:\n  format: json\n"))
        XCTAssertEqual(LogFormatHint.scannedFormat(in: "log:\n  format: logfmt\n"), .logfmt)
    }

    func testFlagsThenEnvironmentThenTheFileThenTheDefault() throws {
        let path = try file("log:\n  format: json\n")
        XCTAssertEqual(
            LogFormatHint.format(filePath: path, environment: ["WSSGATE_LOG_FORMAT": "logfmt"], overrides: []),
            .logfmt
        )
        XCTAssertEqual(
            LogFormatHint.format(
                filePath: path,
                environment: ["WSSGATE_LOG_FORMAT": "logfmt"],
                overrides: ["log.format=json"]
            ),
            .json
        )
        XCTAssertEqual(LogFormatHint.format(filePath: "/nonexistent", environment: [:], overrides: []), .logfmt)
        XCTAssertEqual(LogFormatHint.format(filePath: nil, environment: [:], overrides: []), .logfmt)
    }
}

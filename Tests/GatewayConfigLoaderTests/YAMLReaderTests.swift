import Foundation
import GatewayCore
import XCTest

@testable import GatewayConfigLoader

/// The libyaml layer: what it builds, and that every refusal names the line.
final class YAMLReaderTests: XCTestCase {
    func testTreeKeepsOrderQuotingAndLines() throws {
        let text = """
            # a comment
            b: plain words
            a:
              - "double \\"quoted\\""
              - 'single ''quoted'''
              - [x, "y z"]
            empty:
            block: |
              two
              lines
            """
        guard case .mapping(let pairs, _)? = try YAMLReader.read(text) else { return XCTFail("not a mapping") }
        XCTAssertEqual(pairs.map { $0.key.string }, ["b", "a", "empty", "block"])
        XCTAssertEqual(pairs[0].value.string, "plain words")
        XCTAssertEqual(pairs[0].key.mark, .init(line: 2, column: 1))
        guard case .sequence(let items, let mark) = pairs[1].value else { return XCTFail("not a list") }
        XCTAssertEqual(mark.line, 4)
        XCTAssertEqual(items[0].string, "double \"quoted\"")
        XCTAssertEqual(items[1].string, "single 'quoted'")
        guard case .sequence(let inner, _) = items[2] else { return XCTFail("not a flow list") }
        XCTAssertEqual(inner.map(\.string), ["x", "y z"])
        XCTAssertEqual(pairs[2].value.string, "")
        XCTAssertEqual(pairs[3].value.string, "two\nlines")  // the text ends without a line break
    }

    func testAnchorsAndAliases() throws {
        let text = "base: &limits\n  max: 1\nother: *limits\n"
        guard case .mapping(let pairs, _)? = try YAMLReader.read(text) else { return XCTFail("not a mapping") }
        guard case .mapping(let aliased, _) = pairs[1].value else { return XCTFail("alias not resolved") }
        XCTAssertEqual(aliased.first?.value.string, "1")
        XCTAssertThrowsError(try YAMLReader.read("a: *nothing\n"))
    }

    func testEmptyDocumentIsNil() throws {
        XCTAssertNil(try YAMLReader.read(""))
        XCTAssertNil(try YAMLReader.read("# only a comment\n"))
    }

    func testRefusalsNameTheLine() {
        func failure(_ text: String) -> YAMLReader.Failure? {
            do {
                _ = try YAMLReader.read(text)
                return nil
            } catch {
                return error
            }
        }
        let duplicate = failure("a: 1\nb:\n  c: 1\n  c: 2\n")
        XCTAssertEqual(duplicate?.code, .duplicateKey("c"))
        XCTAssertEqual(duplicate?.mark.line, 4)
        let syntax = failure("a: 1\nb: [unclosed\nc: 2\n")
        XCTAssertEqual(syntax?.code, .syntax)
        XCTAssertGreaterThanOrEqual(syntax?.mark.line ?? 0, 2)
        let tabs = failure("a:\n\t- x\n")
        XCTAssertEqual(tabs?.code, .syntax)
        XCTAssertEqual(tabs?.mark.line, 2)
        let two = failure("a: 1\n---\nb: 2\n")
        XCTAssertEqual(two?.code, .syntax)
        XCTAssertEqual(two?.mark.line, 2)
    }

    /// Through the loader: the key and the line, as before.
    func testLoaderErrorsNameKeyAndLine() async throws {
        let directory = NSTemporaryDirectory() + "wgyaml-\(UInt64.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/wssgate.yaml"
        func error(_ text: String) async throws -> ConfigurationError {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            do {
                _ = try await ConfigurationLoader(filePath: path).load()
            } catch {
                return error
            }
            XCTFail("loaded")
            throw CancellationError()
        }
        let unknown = try await error("listeners:\n  main:\n    address: \"127.0.0.1:1\"\n    adress: x\nroutes: {}\n")
        XCTAssertEqual(unknown.key, "listeners.main.adress")
        XCTAssertTrue(unknown.message.contains("line 4"), unknown.message)
        let duplicate = try await error("listeners:\n  main:\n    address: a\n  main:\n    address: b\n")
        XCTAssertEqual(duplicate.code, .duplicate)
        XCTAssertEqual(duplicate.key, "main")
        XCTAssertTrue(duplicate.message.contains("line 4"), duplicate.message)
        let syntax = try await error("listeners:\n  main: [\n")
        XCTAssertEqual(syntax.code, .syntax)
        XCTAssertTrue(syntax.message.contains("is not valid YAML") && syntax.message.contains("line "), syntax.message)
    }
}

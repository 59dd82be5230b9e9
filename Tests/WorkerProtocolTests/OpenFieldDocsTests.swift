import WorkerProtocol
import XCTest

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// docs/worker-protocol.md lists every field the gateway sends in `open`, as `OpenField.all`
/// declares them: a field added to the code and not to the document fails here.
final class OpenFieldDocsTests: XCTestCase {
    func testTheDocumentsTableIsOpenFieldAll() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("docs/worker-protocol.md"), encoding: .utf8)
        let start = try XCTUnwrap(text.range(of: "<!-- open fields:"))
        let end = try XCTUnwrap(text.range(of: "<!-- end open fields -->"))
        let rows = text[start.upperBound..<end.lowerBound].split(separator: "\n").filter { $0.hasPrefix("| `") }
        let documented = rows.map { row -> [String] in
            row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        let expected = OpenField.all.map { ["`\($0.name)`", $0.meaning] }
        XCTAssertEqual(documented, expected, "docs/worker-protocol.md's open fields differ from OpenField.all")
    }

    func testEveryConstantIsListed() {
        let constants = [
            OpenField.route, OpenField.path, OpenField.query, OpenField.peer, OpenField.subprotocol, OpenField.tls,
            OpenField.claims, OpenField.subject, OpenField.clientSubject,
        ]
        XCTAssertEqual(Set(constants), Set(OpenField.all.map(\.name)))
        XCTAssertTrue(constants.allSatisfy { $0.hasPrefix(":") })
    }
}

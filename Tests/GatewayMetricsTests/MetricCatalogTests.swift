import Foundation
import GatewayMetrics
import XCTest

/// docs/metrics.md and the catalog the exporter takes its `# HELP` lines from name the same
/// metrics, with the same types and labels.
final class MetricCatalogTests: XCTestCase {
    func testTheDocsListEveryMetricOfTheCatalogAndNothingElse() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("docs/metrics.md"), encoding: .utf8)
        var documented: [String: (kind: String, labels: [String])] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("| `wssgate_") {
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            let name = cells[1].trimmingCharacters(in: CharacterSet(charactersIn: "`"))
            // Labels are the backquoted words before any parenthesis: `result` (`success`, …).
            let labelCell = cells[3].split(separator: "(").first.map(String.init) ?? ""
            let labels = labelCell.split(separator: ",").map {
                $0.trimmingCharacters(in: CharacterSet(charactersIn: "` "))
            }.filter { !$0.isEmpty }
            documented[name] = (cells[2], labels)
        }
        XCTAssertEqual(Set(documented.keys), Set(MetricCatalog.entries.map(\.name)))
        for entry in MetricCatalog.entries {
            XCTAssertEqual(documented[entry.name]?.kind, entry.kind.rawValue, entry.name)
            XCTAssertEqual(documented[entry.name]?.labels, entry.labels, entry.name)
            XCTAssertFalse(entry.help.isEmpty, entry.name)
        }
    }
}

import XCTest

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// docs/architecture.md's table of targets is Package.swift's, as the configuration docs are the
/// key table: a target added, removed or given a new dependency without the map following fails
/// here, so the map a newcomer reads first cannot drift from the build.
final class ArchitectureTableTests: XCTestCase {
    func testTheTargetTableIsThePackage() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let manifest = try String(contentsOf: root.appendingPathComponent("Package.swift"), encoding: .utf8)
        let docs = try String(contentsOf: root.appendingPathComponent("docs/architecture.md"), encoding: .utf8)
        let package = PackageTargets(manifest)
        XCTAssertGreaterThan(package.dependencies.count, 20, "the manifest's targets were found")
        let table = TargetTable(docs, names: Set(package.dependencies.keys))
        XCTAssertEqual(table.rows.map(\.name).sorted(), package.dependencies.keys.sorted(), "one row per target")
        for row in table.rows {
            guard let dependencies = row.dependencies else { continue }  // "all of the above"
            XCTAssertEqual(
                dependencies.sorted(),
                (package.dependencies[row.name] ?? []).sorted(),
                "the package's own targets that \(row.name) depends on"
            )
        }
    }

    func testTheReadersFindWhatIsThere() {
        let manifest = """
            .target(
                name: "GatewayHub",
                dependencies: [
                    "GatewayCore", "CYAML",
                    .product(name: "NIOCore", package: "swift-nio"),
                ],
                swiftSettings: swiftSettings
            ),
            .target(name: "Leaf", swiftSettings: swiftSettings),
            .target(name: "GatewayCore"),
            .target(name: "Support", dependencies: ["GatewayHub"], path: "Tests/Support"),
            .testTarget(name: "GatewayHubTests", dependencies: ["GatewayHub"]),
            .executableTarget(name: "tool", dependencies: ["Leaf"]),
            """
        let package = PackageTargets(manifest)
        XCTAssertEqual(
            package.dependencies,
            ["GatewayHub": ["GatewayCore"], "GatewayCore": [], "Leaf": [], "tool": ["Leaf"]],
            "CYAML is a system library, NIOCore a product; tests and test support are not listed"
        )
        let docs = """
            | target | one job | depends on |
            | --- | --- | --- |
            | `GatewayHub` | topics | GatewayCore (its `Settings`, shared), NIOCore, Logging |
            | `Leaf` | alone | — |
            | `tool` | the executable | all of the above |
            """
        let table = TargetTable(docs, names: ["GatewayHub", "GatewayCore", "GatewayLogging", "Leaf", "tool"])
        XCTAssertEqual(table.rows.map(\.name), ["GatewayHub", "Leaf", "tool"])
        XCTAssertEqual(table.rows.map(\.dependencies), [["GatewayCore"], [], nil])
    }
}

/// The package's Swift targets (not tests, not those with a `path:` outside Sources, not system
/// libraries) and, for each, the package's own Swift targets it depends on.
struct PackageTargets {
    var dependencies: [String: Set<String>] = [:]

    init(_ manifest: String) {
        var declared: [String: [String]] = [:]
        var rest = Substring(manifest)
        while let start = rest.firstRange(of: #/\.(target|executableTarget|testTarget|systemLibrary)\(/#) {
            let kind = rest[start].dropFirst().prefix { $0 != "(" }
            let body = Self.balanced(rest[start.upperBound...], open: "(", close: ")")
            rest = rest[body.endIndex...]
            guard kind == "target" || kind == "executableTarget", !body.contains("path:"),
                let name = body.firstMatch(of: #/name:\s*"([^"]+)"/#)?.output.1
            else { continue }
            var names: [String] = []
            if let list = body.firstRange(of: "dependencies: [") {
                let items = Self.balanced(body[list.upperBound...], open: "[", close: "]")
                // A product's name and package are not targets of this package.
                for match in items.matches(of: #/(name: |package: )?"([^"]+)"/#) where match.output.1 == nil {
                    names.append(String(match.output.2))
                }
            }
            declared[String(name)] = names
        }
        for (name, names) in declared { dependencies[name] = Set(names.filter { declared[$0] != nil }) }
    }

    /// The text up to the bracket that closes the one already opened before `text`.
    private static func balanced(_ text: Substring, open: Character, close: Character) -> Substring {
        var depth = 1
        var index = text.startIndex
        while index < text.endIndex {
            if text[index] == open { depth += 1 }
            if text[index] == close {
                depth -= 1
                if depth == 0 { return text[..<index] }
            }
            index = text.index(after: index)
        }
        return text
    }
}

/// docs/architecture.md's target table: each row's target and the package targets its
/// "depends on" column names, by their full names (`Logging` is swift-log, not
/// `GatewayLogging`); text in parentheses explains and is not read; nil for "all of the above".
struct TargetTable {
    struct Row: Equatable {
        var name: String
        var dependencies: Set<String>?
    }

    var rows: [Row] = []

    init(_ docs: String, names: Set<String>) {
        for line in docs.split(separator: "\n") {
            guard let match = line.firstMatch(of: #/^\| `([^`]+)` \|.*\| ([^|]*) \|$/#) else { continue }
            let column = String(match.output.2).replacing(#/\s*\([^)]*\)/#, with: "")
            guard column != "all of the above" else {
                rows.append(Row(name: String(match.output.1), dependencies: nil))
                continue
            }
            var found = Set<String>()
            for item in column.split(separator: ",") {
                let word = String(item.trimmingCharacters(in: .whitespaces).prefix { !$0.isWhitespace })
                if names.contains(word) { found.insert(word) }
            }
            rows.append(Row(name: String(match.output.1), dependencies: found))
        }
    }
}

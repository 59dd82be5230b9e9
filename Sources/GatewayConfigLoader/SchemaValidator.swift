import GatewayCore
import Yams

/// Checks a YAML document against `ConfigSchema` before any value is read, and collects the
/// user-chosen names (listeners, routes).
enum SchemaValidator {
    /// Names must be usable in environment variable names and log fields.
    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64
            && name.unicodeScalars.allSatisfy { $0.properties.isAlphabetic && $0.isASCII || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" }
    }

    static func validate(yaml: String, source: String) throws(ConfigurationError) -> [String: [String]] {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            if case .duplicatedKeysInMapping(let duplicates, let context) = error {
                throw ConfigurationError(.duplicate, key: duplicates.sorted().joined(separator: ", "), "key appears twice in \(source) (line \(context.mark.line))")
            }
            throw ConfigurationError(.syntax, key: "", "\(source) is not valid YAML: \(describe(error))")
        } catch {
            throw ConfigurationError(.syntax, key: "", "\(source) is not valid YAML: \(error)")
        }
        guard let root else { return [:] }  // an empty file is an empty mapping
        var names: [String: [String]] = [:]
        try check(root, against: .section(ConfigSchema.root), path: [], names: &names)
        return names
    }

    /// Yams' own descriptions repeat the whole document; one line with the position is enough.
    private static func describe(_ error: YamlError) -> String {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return "\(problem) at line \(mark.line), column \(mark.column)"
        case .reader(let problem, let offset, _, _):
            return "\(problem) at byte \(offset ?? 0)"
        default:
            return "\(error)"
        }
    }

    private static func describe(_ node: Node) -> String {
        switch node {
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .scalar: "a value"
        case .alias: "an alias"
        }
    }

    private static func line(_ node: Node) -> String {
        node.mark.map { " (line \($0.line))" } ?? ""
    }

    private static func check(_ node: Node, against schema: ConfigSchema.Node, path: [String], names: inout [String: [String]]) throws(ConfigurationError) {
        let key = path.joined(separator: ".")
        func wrongType(_ expected: String) -> ConfigurationError {
            ConfigurationError(.wrongType, key: key, "expected \(expected), found \(describe(node))\(line(node))")
        }
        switch schema {
        case .value:
            guard case .scalar = node else { throw wrongType("a value") }
        case .list:
            guard case .sequence(let items) = node else { throw wrongType("a list") }
            for item in items {
                guard case .scalar = item else { throw ConfigurationError(.wrongType, key: key, "list items must be values\(line(item))") }
            }
        case .valueOrList:
            switch node {
            case .scalar: break
            case .sequence(let items):
                for item in items {
                    guard case .scalar = item else { throw ConfigurationError(.wrongType, key: key, "list items must be values\(line(item))") }
                }
            default: throw wrongType("a value or a list")
            }
        case .section(let entries):
            if case .scalar(let scalar) = node, scalar.string.isEmpty || scalar.string == "~" || scalar.string == "null" {
                return  // `log:` with nothing under it
            }
            guard case .mapping(let mapping) = node else { throw wrongType("a mapping") }
            var seen = Set<String>()
            for (keyNode, child) in mapping {
                guard let name = keyNode.string else { throw ConfigurationError(.wrongType, key: key, "keys must be strings\(line(keyNode))") }
                let childPath = path + [name]
                guard seen.insert(name).inserted else {
                    throw ConfigurationError(.duplicate, key: childPath.joined(separator: "."), "key appears twice\(line(keyNode))")
                }
                guard let childSchema = entries.first(where: { $0.0 == name })?.1 else {
                    let known = entries.map(\.0).joined(separator: ", ")
                    throw ConfigurationError(.unknownKey, key: childPath.joined(separator: "."), "unknown key\(line(keyNode)); known here: \(known)")
                }
                if case .named(let children) = childSchema {
                    try checkNamed(child, children: children, path: childPath, names: &names)
                } else {
                    try check(child, against: childSchema, path: childPath, names: &names)
                }
            }
        case .named(let children):
            try checkNamed(node, children: children, path: path, names: &names)
        }
    }

    private static func checkNamed(_ node: Node, children: [(String, ConfigSchema.Node)], path: [String], names: inout [String: [String]]) throws(ConfigurationError) {
        let key = path.joined(separator: ".")
        guard case .mapping(let mapping) = node else {
            throw ConfigurationError(.wrongType, key: key, "expected a mapping of names, found \(describe(node))\(line(node))")
        }
        var seen = Set<String>()
        for (keyNode, child) in mapping {
            guard let name = keyNode.string, isValidName(name) else {
                throw ConfigurationError(.invalidValue, key: key, "'\(keyNode.string ?? "?")' is not a valid name: use letters, digits, '-' and '_'\(line(keyNode))")
            }
            guard seen.insert(name).inserted else {
                throw ConfigurationError(.duplicate, key: "\(key).\(name)", "name appears twice\(line(keyNode))")
            }
            names[path.last!, default: []].append(name)
            try check(child, against: .section(children), path: path + [name], names: &names)
        }
    }
}

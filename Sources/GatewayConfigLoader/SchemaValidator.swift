import GatewayCore

/// Checks a YAML document against `ConfigSchema` before any value is read, and collects the
/// user-chosen names (listeners, routes).
enum SchemaValidator {
    /// Names must be usable in environment variable names and log fields.
    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64
            && name.unicodeScalars.allSatisfy {
                $0.properties.isAlphabetic && $0.isASCII || ("0"..."9").contains($0) || $0 == "-" || $0 == "_"
            }
    }

    static func validate(_ root: YAMLNode?) throws(ConfigurationError) -> [String: [String]] {
        guard let root else { return [:] }  // an empty file is an empty mapping
        var names: [String: [String]] = [:]
        try check(root, against: .section(ConfigSchema.root), path: [], names: &names)
        return names
    }

    /// The document's tree; syntax errors and keys written twice name the line.
    static func parse(_ yaml: String, source: String) throws(ConfigurationError) -> YAMLNode? {
        do {
            return try YAMLReader.read(yaml)
        } catch {
            switch error.code {
            case .duplicateKey(let key):
                throw ConfigurationError(
                    .duplicate,
                    key: key,
                    "key appears twice in \(source) (line \(error.mark.line))"
                )
            case .syntax:
                throw ConfigurationError(
                    .syntax,
                    key: "",
                    "\(source) is not valid YAML: \(error.problem) at line \(error.mark.line), column \(error.mark.column)"
                )
            }
        }
    }

    private static func describe(_ node: YAMLNode) -> String {
        switch node {
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .scalar: "a value"
        }
    }

    private static func line(_ node: YAMLNode) -> String {
        " (line \(node.mark.line))"
    }

    private static func check(
        _ node: YAMLNode,
        against schema: ConfigSchema.Node,
        path: [String],
        names: inout [String: [String]]
    ) throws(ConfigurationError) {
        let key = path.joined(separator: ".")
        func wrongType(_ expected: String) -> ConfigurationError {
            ConfigurationError(.wrongType, key: key, "expected \(expected), found \(describe(node))\(line(node))")
        }
        switch schema {
        case .value:
            guard case .scalar = node else { throw wrongType("a value") }
        case .list:
            guard case .sequence(let items, _) = node else { throw wrongType("a list") }
            for item in items {
                guard case .scalar = item else {
                    throw ConfigurationError(.wrongType, key: key, "list items must be values\(line(item))")
                }
            }
        case .valueOrList:
            switch node {
            case .scalar: break
            case .sequence(let items, _):
                for item in items {
                    guard case .scalar = item else {
                        throw ConfigurationError(.wrongType, key: key, "list items must be values\(line(item))")
                    }
                }
            default: throw wrongType("a value or a list")
            }
        case .section(let entries):
            if case .scalar(let text, _) = node, text.isEmpty || text == "~" || text == "null" {
                return  // `log:` with nothing under it
            }
            guard case .mapping(let mapping, _) = node else { throw wrongType("a mapping") }
            var seen = Set<String>()
            for (keyNode, child) in mapping {
                guard let name = keyNode.string else {
                    throw ConfigurationError(.wrongType, key: key, "keys must be strings\(line(keyNode))")
                }
                let childPath = path + [name]
                guard seen.insert(name).inserted else {
                    throw ConfigurationError(
                        .duplicate,
                        key: childPath.joined(separator: "."),
                        "key appears twice\(line(keyNode))"
                    )
                }
                guard let childSchema = entries.first(where: { $0.0 == name })?.1 else {
                    let known = entries.map(\.0).joined(separator: ", ")
                    throw ConfigurationError(
                        .unknownKey,
                        key: childPath.joined(separator: "."),
                        "unknown key\(line(keyNode)); known here: \(known)"
                    )
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

    private static func checkNamed(
        _ node: YAMLNode,
        children: [(String, ConfigSchema.Node)],
        path: [String],
        names: inout [String: [String]]
    ) throws(ConfigurationError) {
        let key = path.joined(separator: ".")
        guard case .mapping(let mapping, _) = node else {
            throw ConfigurationError(
                .wrongType,
                key: key,
                "expected a mapping of names, found \(describe(node))\(line(node))"
            )
        }
        var seen = Set<String>()
        for (keyNode, child) in mapping {
            guard let name = keyNode.string, isValidName(name) else {
                throw ConfigurationError(
                    .invalidValue,
                    key: key,
                    "'\(keyNode.string ?? "?")' is not a valid name: use letters, digits, '-' and '_'\(line(keyNode))"
                )
            }
            guard seen.insert(name).inserted else {
                throw ConfigurationError(.duplicate, key: "\(key).\(name)", "name appears twice\(line(keyNode))")
            }
            names[path.last!, default: []].append(name)
            try check(child, against: .section(children), path: path + [name], names: &names)
        }
    }
}

/// The shape of the configuration: every key the gateway knows, and what kind of value it takes,
/// derived from the one declaration of every key (`ConfigKeys`).
///
/// It drives validation of the file (unknown keys, mapping-versus-value mistakes), the list of
/// environment variables that may override it, and the builder's lookup of a key's kind and
/// default.
public enum ConfigSchema {
    public indirect enum Node: Sendable {
        /// A single value (string, number, duration, byte count, boolean).
        case value
        /// A list of values.
        case list
        /// A single value or a list (for example `self_signed: true` or a list of names).
        case valueOrList
        /// A fixed set of keys.
        case section([(String, Node)])
        /// Keys chosen by the user (listener and route names), each holding the same section.
        case named([(String, Node)])
    }

    public static let root: [(String, Node)] = ConfigKeys.root.nodes.map(node)

    private static func node(_ key: ConfigKeyNode) -> (String, Node) {
        switch key.content {
        case .value(let spec): (key.name, spec.kind.shape)
        case .section(let children): (key.name, .section(children.map(node)))
        case .named(let children): (key.name, .named(children.map(node)))
        }
    }

    /// Every key by its pattern (`routes.<name>.ping_interval`), `<name>` standing for a
    /// user-chosen name, in table order.
    public static let keys: [(pattern: String, spec: ConfigKeySpec)] = {
        var result: [(String, ConfigKeySpec)] = []
        func walk(_ nodes: [ConfigKeyNode], _ prefix: String) {
            for key in nodes {
                let path = prefix.isEmpty ? key.name : "\(prefix).\(key.name)"
                switch key.content {
                case .value(let spec): result.append((path, spec))
                case .section(let children): walk(children, path)
                case .named(let children): walk(children, "\(path).<name>")
                }
            }
        }
        walk(ConfigKeys.root.nodes, "")
        return result
    }()

    private static let specs: [String: ConfigKeySpec] = Dictionary(
        keys.map { ($0.pattern, $0.spec) },
        uniquingKeysWith: { first, _ in first }
    )

    /// Sections whose keys are names the user chooses: the component after one is a name.
    private static let namedSections: Set<String> = {
        var result = Set<String>()
        func walk(_ nodes: [ConfigKeyNode]) {
            for key in nodes {
                switch key.content {
                case .value: break
                case .section(let children): walk(children)
                case .named(let children):
                    result.insert(key.name)
                    walk(children)
                }
            }
        }
        walk(ConfigKeys.root.nodes)
        return result
    }()

    /// The pattern of a concrete key path: `routes.echo.ping_interval` → `routes.<name>.ping_interval`.
    public static func pattern(of path: [String]) -> String {
        var components: [String] = []
        var nameNext = false
        for component in path {
            components.append(nameNext ? "<name>" : component)
            nameNext = !nameNext && namedSections.contains(component)
        }
        return components.joined(separator: ".")
    }

    /// The declaration of the key at a concrete path, if there is one.
    public static func spec(for path: [String]) -> ConfigKeySpec? {
        specs[pattern(of: path)]
    }

    /// Every key path, with `<name>` standing for a user-chosen name: for documentation checks.
    public static var allKeyPatterns: [String] { keys.map(\.pattern) }

    /// Every concrete key path for the given listener and route names.
    static func keyPaths(names: [String: [String]]) -> [[String]] {
        var result: [[String]] = []
        func walk(_ entries: [(String, Node)], _ prefix: [String]) {
            for (key, node) in entries {
                let path = prefix + [key]
                switch node {
                case .value, .list, .valueOrList: result.append(path)
                case .section(let children): walk(children, path)
                case .named(let children):
                    for name in names[key] ?? [] { walk(children, path + [name]) }
                }
            }
        }
        walk(root, [])
        return result
    }
}

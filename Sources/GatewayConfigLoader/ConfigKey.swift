import GatewayCore

/// One configuration key, declared once (`ConfigKeys`): its name, the kind of value it takes,
/// its default, when a reload applies it, and the line that documents it. The schema check, the
/// builder's parsing and range checks, `check-config`'s printer, the reload's restart check and
/// the tables of docs/configuration.md all read this one declaration.
public struct ConfigKeySpec: Sendable {
    public let name: String
    public let kind: ValueKind
    public let defaultValue: KeyDefault
    public let reload: ReloadEffect
    /// The documentation line (Markdown).
    public let meaning: String
}

/// What a key's value is: how the builder parses and checks it, and how the schema shapes it.
public enum ValueKind: Sendable {
    /// Free text (a path, a name, a URL).
    case text
    /// An inline secret: text that `check-config` prints as `[redacted]`.
    case secret
    /// One of a fixed set of words.
    case word([String])
    case boolean
    case integer(ClosedRange<Int>)
    /// A byte count (`65536`, `64KiB`, `1MiB`).
    case bytes(ClosedRange<Int>)
    /// A duration (`30`, `30s`, `500ms`, `5m`); `positive` refuses zero.
    case duration(positive: Bool)
    /// A duration, or `never` for none.
    case durationOrNever
    /// A number per second, fractions allowed; 0 is no limit.
    case rate
    /// A list of texts (a YAML sequence, or comma-separated from the environment and flags).
    case list
    /// A single value or a list (`self_signed: true`, or the names).
    case valueOrList

    /// The node this kind of value takes in a YAML file.
    var shape: ConfigSchema.Node {
        switch self {
        case .list: .list
        case .valueOrList: .valueOrList
        default: .value
        }
    }
}

/// A key's default, as documented and as the builder applies it.
public enum KeyDefault: Sendable {
    /// A value in the file's own syntax, used when the key is not set; `note` explains it.
    case value(String, note: String? = nil)
    /// A list, used when the key is not set.
    case list([String])
    /// No value: what leaving the key out means, in words.
    case unset(String)
    /// The key must be set (in words: when).
    case required(String)
}

/// When a changed key's new value takes effect after a reload (docs/configuration.md, Reload).
public enum ReloadEffect: String, Sendable {
    case applies
    case newConnections = "new connections"
    case newSubscriptions = "new subscriptions"
    /// A reload that changes the key is refused: it takes a restart.
    case restart
}

/// A value as `check-config` prints it.
public enum PrintedValue: Sendable, Equatable {
    /// As it is (numbers, booleans, durations, words).
    case bare(String)
    /// In double quotes.
    case quoted(String)
    /// A flow sequence of quoted texts.
    case list([String])
    /// A flow sequence of bare values (numbers).
    case bareList([String])
    /// A secret: printed as `[redacted]`, compared by its value.
    case secret(String)
    /// Not a value but a comment in its place (a default that must stay optional).
    case comment(String)
}

/// One entry of a section over `Scope` (the part of the configuration the section describes):
/// a key with a getter for its printed value, or a nested section with a getter for its part.
public struct ConfigEntry<Scope>: Sendable {
    public let node: ConfigKeyNode
    let emit: @Sendable (Scope, inout ConfigPrinter) -> Void

    /// A key whose printed value is read from the section's part (nil: not printed).
    public static func key(
        _ name: String,
        _ kind: ValueKind,
        _ defaultValue: KeyDefault,
        _ reload: ReloadEffect,
        _ meaning: String,
        print: @escaping @Sendable (Scope) -> PrintedValue?
    ) -> Self {
        let spec = ConfigKeySpec(name: name, kind: kind, defaultValue: defaultValue, reload: reload, meaning: meaning)
        return ConfigEntry(node: ConfigKeyNode(name: name, content: .value(spec))) { scope, printer in
            if let value = print(scope) { printer.value(spec, value) }
        }
    }

    /// A fixed sub-section, printed when its part exists.
    public static func section<Child>(
        _ name: String,
        _ child: ConfigSection<Child>,
        _ part: @escaping @Sendable (Scope) -> Child?
    ) -> Self {
        ConfigEntry(node: ConfigKeyNode(name: name, content: .section(child.nodes))) { scope, printer in
            guard let value = part(scope) else { return }
            printer.section(name) { printer in child.emit(value, &printer) }
        }
    }

    /// Sections under names the user chooses (listeners, routes, SNI certificates).
    public static func named<Child>(
        _ name: String,
        _ child: ConfigSection<Child>,
        printsWhenEmpty: Bool = false,
        _ parts: @escaping @Sendable (Scope) -> [(String, Child)]
    ) -> Self {
        ConfigEntry(node: ConfigKeyNode(name: name, content: .named(child.nodes))) { scope, printer in
            let instances = parts(scope)
            guard !instances.isEmpty || printsWhenEmpty else { return }
            printer.section(name) { printer in
                for (instance, value) in instances {
                    printer.section(instance, isName: true) { printer in child.emit(value, &printer) }
                }
            }
        }
    }
}

/// The entries of one section, in the order they are printed and documented.
public struct ConfigSection<Scope>: Sendable {
    public let entries: [ConfigEntry<Scope>]

    public init(_ entries: [ConfigEntry<Scope>]) {
        self.entries = entries
    }

    public var nodes: [ConfigKeyNode] { entries.map(\.node) }

    func emit(_ scope: Scope, _ printer: inout ConfigPrinter) {
        for entry in entries { entry.emit(scope, &printer) }
    }
}

/// The declarative tree of keys, without getters: what the schema check and the docs read.
public struct ConfigKeyNode: Sendable {
    public enum Content: Sendable {
        case value(ConfigKeySpec)
        case section([ConfigKeyNode])
        /// Sections under user-chosen names, each with these keys.
        case named([ConfigKeyNode])
    }

    public let name: String
    public let content: Content
}

/// Collects the printed keys of a configuration in table order, with their concrete paths.
public struct ConfigPrinter: Sendable {
    public struct Line: Sendable, Equatable {
        /// The concrete dotted path (`routes.echo.ping_interval`).
        public let path: String
        public let depth: Int
        /// The key or section name as printed.
        public let name: String
        /// nil for a section header.
        public let value: PrintedValue?
        public let reload: ReloadEffect?
    }

    public private(set) var lines: [Line] = []
    private var path: [String] = []

    mutating func value(_ spec: ConfigKeySpec, _ value: PrintedValue) {
        lines.append(
            Line(
                path: (path + [spec.name]).joined(separator: "."),
                depth: path.count,
                name: spec.name,
                value: value,
                reload: spec.reload
            )
        )
    }

    mutating func section(_ name: String, isName: Bool = false, _ body: (inout ConfigPrinter) -> Void) {
        lines.append(
            Line(path: (path + [name]).joined(separator: "."), depth: path.count, name: name, value: nil, reload: nil)
        )
        path.append(name)
        body(&self)
        path.removeLast()
    }
}

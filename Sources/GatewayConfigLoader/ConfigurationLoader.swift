import Configuration
import GatewayCore
import SystemPackage

/// Builds a `GatewayConfiguration` from, in rising precedence: the YAML file (or the embedded
/// default when there is none), `WSSGATE_…` environment variables, and `--set key=value` flags.
///
/// The file is read by libyaml (`YAMLReader`) and checked against `ConfigSchema`, so an unknown
/// key or a mapping where a value belongs is reported with its dotted name and line; values are
/// then read through swift-configuration's provider stack (flags, environment, the file's tree
/// in memory) and parsed here, so a wrong type names its key too instead of silently falling
/// back to a default. Nothing half-valid is ever returned.
public struct ConfigurationLoader: Sendable {
    /// The prefix of environment variables that override keys: `WSSGATE_ROUTES_ECHO_PATH`.
    public static let environmentPrefix = "WSSGATE_"
    /// Environment variables with the prefix that are not configuration keys.
    public static let reservedEnvironment: Set<String> = ["WSSGATE_CONFIG", CredentialFiles.environmentVariable]

    public var filePath: String?
    public var environment: [String: String]
    public var overrides: [String]
    /// Names of the sockets systemd passed: the embedded default serves on them.
    public var activatedSockets: [String]
    /// The demo page's folder, for the embedded default (nil: no demo route).
    public var demoRoot: String?

    public init(
        filePath: String?,
        environment: [String: String] = [:],
        overrides: [String] = [],
        activatedSockets: [String] = [],
        demoRoot: String? = nil
    ) {
        self.filePath = filePath
        self.environment = environment
        self.overrides = overrides
        self.activatedSockets = activatedSockets
        self.demoRoot = demoRoot
    }

    public func load() async throws(ConfigurationError) -> GatewayConfiguration {
        // 1. The file's text, checked against the schema.
        let text: String
        let source: String
        if let filePath {
            text = try Self.readFile(filePath)
            source = filePath
        } else {
            text = EmbeddedDefault.yaml(
                activatedSockets: activatedSockets,
                demoRoot: demoRoot,
                historyDirectory: EmbeddedDefault.stateDirectory(environment: environment)
            )
            source = "embedded default"
        }
        return try load(text: text, source: source)
    }

    /// The same from a file's text in hand (`filePath` is not read): what the configuration
    /// fuzz target feeds arbitrary bytes through.
    package func load(text: String, source: String) throws(ConfigurationError) -> GatewayConfiguration {
        let document = try SchemaValidator.parse(text, source: source)
        var names = try SchemaValidator.validate(document)

        // 2. Flags: `key=value`; they may name new listeners or routes.
        var flagValues: [AbsoluteConfigKey: ConfigValue] = [:]
        var flagPaths: [[String]] = []
        for override in overrides {
            guard let equals = override.firstIndex(of: "=") else {
                throw ConfigurationError(.syntax, key: override, "a flag override is written key=value")
            }
            let path = override[..<equals].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            let value = String(override[override.index(after: equals)...])
            for (section, nameIndex) in [("listeners", 1), ("routes", 1)]
            where path.first == section && path.count > nameIndex + 1 {
                if !(names[section] ?? []).contains(path[nameIndex]) {
                    names[section, default: []].append(path[nameIndex])
                }
            }
            flagPaths.append(path)
            flagValues[AbsoluteConfigKey(path)] = ConfigValue(.string(value), isSecret: false)
        }

        let keyPaths = ConfigSchema.keyPaths(names: names)
        let known = Set(keyPaths.map { $0.joined(separator: ".") })
        for path in flagPaths where !known.contains(path.joined(separator: ".")) {
            throw ConfigurationError(.unknownKey, key: path.joined(separator: "."), "no such configuration key")
        }

        // 3. Environment: only known keys may be set, so a typo is an error, not a no-op.
        let environmentNames = Dictionary(
            keyPaths.map { (Self.environmentName(for: $0), $0) },
            uniquingKeysWith: { a, _ in a }
        )
        var environmentValues: [String: String] = [:]
        for (name, value) in environment where name.hasPrefix(Self.environmentPrefix) {
            if Self.reservedEnvironment.contains(name) { continue }
            guard environmentNames[name] != nil else {
                throw ConfigurationError(.unknownKey, key: name, "no configuration key has this environment variable")
            }
            environmentValues[String(name.dropFirst(Self.environmentPrefix.count))] = value
        }

        // 4. The provider stack.
        var providers: [any ConfigProvider] = [
            InMemoryProvider(name: "flags", values: flagValues),
            EnvironmentVariablesProvider(environmentVariables: environmentValues),
        ]
        // The file was read and checked above: its values come from the same tree.
        providers.append(InMemoryProvider(name: source, values: Self.flatten(document)))
        let reader = ConfigReader(providers: providers)
        return try ConfigurationBuilder(
            reader: reader,
            names: names,
            credentials: CredentialFiles(environment: environment)
        ).build()
    }

    /// The environment variable that overrides a key, as swift-configuration spells it
    /// (`routes.echo.max_message_bytes` → `WSSGATE_ROUTES_ECHO_MAX_MESSAGE_BYTES`).
    public static func environmentName(for path: [String]) -> String {
        let components = path.map { component -> String in
            var out = ""
            var previous: Character?
            for character in component {
                if let previous, previous.isLowercase, character.isUppercase { out.append("_") }
                out.append(character.isLetter || character.isNumber ? Character(character.uppercased()) : "_")
                previous = character
            }
            return out
        }
        return environmentPrefix + components.joined(separator: "_")
    }

    static func readFile(_ path: String) throws(ConfigurationError) -> String {
        do {
            let fd = try FileDescriptor.open(FilePath(path), .readOnly)
            defer { try? fd.close() }
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = try chunk.withUnsafeMutableBytes { try fd.read(into: $0) }
                if count == 0 { break }
                bytes.append(contentsOf: chunk[0..<count])
                if bytes.count > 4 << 20 {
                    throw ConfigurationError(.invalidValue, key: "", "\(path) is larger than 4 MiB")
                }
            }
            return String(decoding: bytes, as: UTF8.self)
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw ConfigurationError(.fileUnreadable, key: "", "cannot read \(path): \(error)")
        }
    }

    /// Turns a validated YAML document into swift-configuration's flat key/value form.
    static func flatten(_ document: YAMLNode?) -> [AbsoluteConfigKey: ConfigValue] {
        var values: [AbsoluteConfigKey: ConfigValue] = [:]
        func walk(_ node: YAMLNode, _ path: [String]) {
            switch node {
            case .mapping(let pairs, _):
                for (key, child) in pairs { walk(child, path + [key.string ?? ""]) }
            case .sequence(let items, _):
                values[AbsoluteConfigKey(path)] = ConfigValue(
                    .stringArray(items.map { $0.string ?? "" }),
                    isSecret: false
                )
            case .scalar(let text, _):
                values[AbsoluteConfigKey(path)] = ConfigValue(.string(text), isSecret: false)
            }
        }
        if let document { walk(document, []) }
        return values
    }
}

import GatewayCore

/// Prints a configuration as the YAML that would produce it, every default spelled out:
/// what `wssgate check-config` shows. The keys, their order and their getters are `ConfigKeys`.
///
/// Everything the loader reads is printed, so the output loads as the same configuration —
/// except secrets written inline (HS256 secrets, the admin token, the ACME EAB key), which are
/// printed as `[redacted]`: loaded like that they stand for a secret nobody knows, so the route
/// or API still refuses what needs it. Secrets read from files are printed as their paths.
public enum EffectiveConfiguration {
    /// What an inline secret is printed as.
    public static let redacted = "[redacted]"

    /// The printed keys of a configuration, with their concrete paths and reload behaviour.
    public static func lines(_ configuration: GatewayConfiguration) -> [ConfigPrinter.Line] {
        var printer = ConfigPrinter()
        ConfigKeys.root.emit(configuration, &printer)
        return printer.lines
    }

    public static func yaml(_ configuration: GatewayConfiguration) -> String {
        var out = ""
        var redactedKeys: [String] = []
        let printed = lines(configuration)
        for (index, line) in printed.enumerated() {
            let indent = String(repeating: "  ", count: line.depth)
            switch line.value {
            case nil:
                // A section with nothing in it (no routes) is an empty mapping: bare, it would
                // read back as a null, which is not a section.
                let isEmpty = index + 1 == printed.count || printed[index + 1].depth <= line.depth
                out += "\(indent)\(line.name):\(isEmpty ? " {}" : "")\n"
            case .bare(let text): out += "\(indent)\(line.name): \(text)\n"
            case .quoted(let text): out += "\(indent)\(line.name): \(quoted(text))\n"
            case .list(let items): out += "\(indent)\(line.name): [\(items.map(quoted).joined(separator: ", "))]\n"
            case .bareList(let items): out += "\(indent)\(line.name): [\(items.joined(separator: ", "))]\n"
            case .secret:
                out += "\(indent)\(line.name): \(quoted(redacted))\n"
                redactedKeys.append(line.path)
            case .comment(let text): out += "\(indent)# \(line.name): \(text)\n"
            }
        }
        guard !redactedKeys.isEmpty else { return out }
        // Said first, so nobody mistakes this text for a copy of the file.
        return
            "# Secrets are shown as \"\(redacted)\" (\(redactedKeys.joined(separator: ", "))): keep the original file.\n"
            + "# Loaded as it is, this text stands for secrets nobody knows: what needs them is refused.\n" + out
    }

    /// The keys a running process cannot change that differ between two configurations (their
    /// `reload` is `restart`), by concrete path: a reload that changes one is refused.
    public static func restartOnlyChanges(from old: GatewayConfiguration, to new: GatewayConfiguration) -> [String] {
        func values(_ configuration: GatewayConfiguration) -> [String: PrintedValue] {
            var result: [String: PrintedValue] = [:]
            for line in lines(configuration) where line.reload == .restart {
                if let value = line.value { result[line.path] = value }
            }
            return result
        }
        let before = values(old)
        let after = values(new)
        return Set(before.keys).union(after.keys).filter { before[$0] != after[$0] }.sorted()
    }

    /// A YAML double-quoted scalar that reads back as `text`: line breaks and other control
    /// characters are escaped, since YAML folds a raw line break in a quoted scalar (one
    /// becomes a space, n + 1 become n).
    private static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": result += "\\\\"
            case "\"": result += "\\\""
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            case "\u{00}"..."\u{1F}", "\u{7F}"..."\u{9F}", "\u{2028}", "\u{2029}", "\u{FEFF}":
                let hex = String(scalar.value, radix: 16, uppercase: true)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}

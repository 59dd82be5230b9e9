import GatewayCore

/// The log format a configuration asks for, read without loading the rest of it.
///
/// A command that reports a configuration it cannot load (`check-config`, `reload`, `run`
/// refusing to start) still writes in the operator's format, so a journal or a collector that
/// parses JSON lines does not meet a stray line of prose. Precedence as for the loaded
/// configuration: a `--set log.format=` flag, then `WSSGATE_LOG_FORMAT`, then the file's
/// `log.format` (when the YAML parses at all), then the default.
public enum LogFormatHint {
    public static func format(
        filePath: String?,
        environment: [String: String],
        overrides: [String]
    ) -> LogSettings.Format {
        for override in overrides.reversed() where override.hasPrefix("log.format=") {
            if let format = LogSettings.Format(rawValue: String(override.dropFirst("log.format=".count))) {
                return format
            }
        }
        let variable = ConfigurationLoader.environmentName(for: ["log", "format"])
        if let value = environment[variable], let format = LogSettings.Format(rawValue: value) {
            return format
        }
        guard let filePath, let text = try? ConfigurationLoader.readFile(filePath) else { return LogSettings().format }
        if let root = try? YAMLReader.read(text) {
            return format(in: root) ?? LogSettings().format
        }
        return scannedFormat(in: text) ?? LogSettings().format
    }

    /// For a file libyaml refuses (a key written twice, a stray tab elsewhere): the `format:`
    /// line inside a top-level `log:` block, read line by line.
    static func scannedFormat(in text: String) -> LogSettings.Format? {
        var inLog = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let content = line.prefix { $0 != "#" }
            guard !content.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\r" }) else { continue }
            if let first = content.first, first != " " {
                inLog = content.trimmingCharacters() == "log:"
                continue
            }
            guard inLog else { continue }
            let trimmed = content.trimmingCharacters()
            guard trimmed.hasPrefix("format:") else { continue }
            let value = trimmed.dropFirst("format:".count).trimmingCharacters().filter { $0 != "\"" && $0 != "'" }
            return LogSettings.Format(rawValue: value)
        }
        return nil
    }

    static func format(in root: YAMLNode) -> LogSettings.Format? {
        guard case .mapping(let sections, _) = root,
            case .mapping(let keys, _)? = sections.first(where: { $0.key.string == "log" })?.value,
            let value = keys.first(where: { $0.key.string == "format" })?.value.string
        else { return nil }
        return LogSettings.Format(rawValue: value)
    }
}

extension Substring {
    fileprivate func trimmingCharacters() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed())
    }
}

extension String {
    fileprivate func trimmingCharacters() -> String { Substring(self).trimmingCharacters() }
}

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
        guard let filePath, let text = try? ConfigurationLoader.readFile(filePath),
            let root = try? YAMLReader.read(text)
        else { return LogSettings().format }
        return format(in: root) ?? LogSettings().format
    }

    static func format(in root: YAMLNode) -> LogSettings.Format? {
        guard case .mapping(let sections, _) = root,
            case .mapping(let keys, _)? = sections.first(where: { $0.key.string == "log" })?.value,
            let value = keys.first(where: { $0.key.string == "format" })?.value.string
        else { return nil }
        return LogSettings.Format(rawValue: value)
    }
}

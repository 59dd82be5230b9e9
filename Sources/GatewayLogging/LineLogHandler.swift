import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A swift-log handler that writes one line per event to standard error, as logfmt
/// (`ts=… level=info msg="…" key=value`) or JSON (one object per line). Standard error because
/// that is where journald, container runtimes and `make run` look.
public struct LineLogHandler: LogHandler {
    public enum Format: Sendable { case logfmt, json }

    /// The shared level, unless this handler's logger set its own.
    public var logLevel: Logger.Level {
        get { levelOverride ?? live.level }
        set { levelOverride = newValue }
    }
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private var levelOverride: Logger.Level?
    private let label: String
    private let live: LiveLogSettings
    private let sink: LogSink

    /// A handler that follows `live`: what the gateway uses, so a reload reaches every logger.
    public init(label: String, live: LiveLogSettings, sink: LogSink = .standardError) {
        self.label = label
        self.live = live
        self.sink = sink
    }

    public init(
        label: String,
        format: Format,
        level: Logger.Level,
        sink: LogSink = .standardError,
        redactor: Redactor = Redactor()
    ) {
        self.init(label: label, live: LiveLogSettings(level: level, format: format, redactor: redactor), sink: sink)
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let (format, redactor) = (live.format, live.redactor)
        for (key, value) in merged { merged[key] = redactor.redact(value, key: key) }
        let line = Self.render(
            format: format,
            timestamp: Self.timestamp(),
            level: event.level,
            label: label,
            message: redactor.redact("\(event.message)"),
            metadata: merged
        )
        sink.write(line, level: event.level)
    }

    /// One rendered line, without the newline. Metadata keys are sorted so lines are stable.
    public static func render(
        format: Format,
        timestamp: String,
        level: Logger.Level,
        label: String,
        message: String,
        metadata: Logger.Metadata
    ) -> String {
        let keys = metadata.keys.sorted()
        switch format {
        case .logfmt:
            var line = "ts=\(timestamp) level=\(level) logger=\(logfmtValue(label)) msg=\(logfmtValue(message))"
            for key in keys {
                line += " \(logfmtKey(key))=\(logfmtValue(metadata[key]!.flatText))"
            }
            return line
        case .json:
            var line =
                "{\"ts\":\(jsonString(timestamp)),\"level\":\(jsonString("\(level)")),\"logger\":\(jsonString(label)),\"msg\":\(jsonString(message))"
            for key in keys {
                line += ",\(jsonString(key)):\(jsonValue(metadata[key]!))"
            }
            return line + "}"
        }
    }

    static func logfmtKey(_ key: String) -> String {
        String(key.map { $0 == " " || $0 == "=" || $0 == "\"" ? "_" : $0 })
    }

    /// Bare when it can be, quoted with escapes when it holds spaces, quotes, `=` or controls.
    static func logfmtValue(_ value: String) -> String {
        if !value.isEmpty
            && !value.unicodeScalars.contains(where: {
                $0 == " " || $0 == "=" || $0 == "\"" || $0 == "\\" || $0.value < 0x20
            })
        {
            return value
        }
        return quoted(value)
    }

    static func jsonString(_ value: String) -> String {
        quoted(value)
    }

    /// A double-quoted string with JSON escapes (which logfmt readers accept too).
    private static func quoted(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 { out += "\\u" + hex4(scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }

    static func jsonValue(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let text): return jsonString(text)
        case .stringConvertible(let convertible):
            let text = convertible.description
            // Numbers and booleans stay numbers and booleans.
            if convertible is any BinaryInteger || convertible is Bool
                || (convertible is Double && Double(text)?.isFinite == true)
            {
                return text
            }
            return jsonString(text)
        case .array(let values): return "[" + values.map(jsonValue).joined(separator: ",") + "]"
        case .dictionary(let entries):
            return "{"
                + entries.keys.sorted().map { "\(jsonString($0)):\(jsonValue(entries[$0]!))" }.joined(separator: ",")
                + "}"
        }
    }

    private static func hex4(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// RFC 3339 UTC with milliseconds, without Foundation's formatters.
    public static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        let millis = Int32(now.tv_nsec / 1_000_000)
        return
            "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(millis, 3))Z"
    }
}

extension Logger.MetadataValue {
    /// Text of a metadata value for logfmt (nested values are flattened).
    var flatText: String {
        switch self {
        case .string(let text): text
        case .stringConvertible(let convertible): convertible.description
        case .array(let values): values.map(\.flatText).joined(separator: ",")
        case .dictionary(let entries):
            entries.keys.sorted().map { "\($0):\(entries[$0]!.flatText)" }.joined(separator: ",")
        }
    }
}

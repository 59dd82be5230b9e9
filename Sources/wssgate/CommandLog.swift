import GatewayConfigLoader
import GatewayCore
import GatewayLogging
import Logging
import Systemd

/// How the binary's commands write to standard error.
///
/// When standard error is the journal (`JOURNAL_STREAM`), every line is a log line in the
/// configured format with its syslog priority, so `journalctl -p err` finds errors and a parser
/// of the journal meets no stray prose — a command that could not load the configuration too,
/// in the format the configuration asks for (`LogFormatHint`). On a terminal or a pipe a
/// command's own problem is a sentence, as a person reading it expects.
enum CommandLog {
    static var journal: Bool { JournalStream.standardErrorIsJournal(environment: PreparedGateway.environment()) }

    /// Sets swift-log up for the process (once): every logger writes through `settings`.
    static func bootstrap(_ settings: LiveLogSettings) {
        let sink = LogSink.standardError(syslogPriorities: journal)
        LoggingSystem.bootstrap { label in LineLogHandler(label: label, live: settings, sink: sink) }
    }

    /// Live settings for a configuration's log section.
    static func settings(_ log: LogSettings) -> LiveLogSettings {
        LiveLogSettings(
            level: Logger.Level(rawValue: log.level.rawValue) ?? .info,
            format: log.format == .json ? .json : .logfmt,
            redactor: Redactor(parameters: log.redactParameters)
        )
    }

    /// Live settings before the configuration is loaded: its format, read leniently.
    static func settings(filePath: String?, overrides: [String]) -> LiveLogSettings {
        let format = LogFormatHint.format(
            filePath: filePath,
            environment: PreparedGateway.environment(),
            overrides: overrides
        )
        return settings(LogSettings(format: format))
    }

    /// A problem that ends a command: a log line at `error` in the journal, else the sentence.
    static func problem(
        _ sentence: String,
        message: String,
        metadata: Logger.Metadata = [:],
        format: LogSettings.Format
    ) {
        guard journal else {
            printError(sentence)
            return
        }
        let line = LineLogHandler.render(
            format: format == .json ? .json : .logfmt,
            timestamp: LineLogHandler.timestamp(),
            level: .error,
            label: "wssgate",
            message: message,
            metadata: metadata
        )
        LogSink.standardError(syslogPriorities: true).write(line, level: .error)
    }

    /// A configuration that does not load, reported as `problem` does.
    static func refused(_ error: ConfigurationError, filePath: String?, overrides: [String]) {
        var metadata: Logger.Metadata = ["error": .string(error.message), "code": .string("\(error.code)")]
        if !error.key.isEmpty { metadata["key"] = .string(error.key) }
        if let filePath { metadata["file"] = .string(filePath) }
        let format = LogFormatHint.format(
            filePath: filePath,
            environment: PreparedGateway.environment(),
            overrides: overrides
        )
        problem("wssgate: \(error)", message: "configuration refused", metadata: metadata, format: format)
    }
}

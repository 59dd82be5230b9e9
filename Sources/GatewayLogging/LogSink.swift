import Logging
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where log lines go. Each line is written with one `write(2)`, so lines from different
/// threads never interleave.
public struct LogSink: Sendable {
    private let writeLine: @Sendable (Logger.Level, String) -> Void

    public init(_ writeLine: @escaping @Sendable (String) -> Void) {
        self.writeLine = { _, line in writeLine(line) }
    }

    /// A sink that also hears each line's level.
    public init(leveled writeLine: @escaping @Sendable (Logger.Level, String) -> Void) {
        self.writeLine = writeLine
    }

    public func write(_ line: String, level: Logger.Level = .info) { writeLine(level, line) }

    /// Standard error, each line as it is.
    public static let standardError = standardError(syslogPriorities: false)

    /// Standard error; with `syslogPriorities` each line starts with its syslog priority
    /// (`<3>` for an error), which journald takes as the line's priority and removes
    /// (sd-daemon(3)): for when standard error is the journal (`JournalStream`).
    public static func standardError(syslogPriorities: Bool) -> LogSink {
        LogSink(leveled: { level, line in
            var bytes: [UInt8] = []
            if syslogPriorities {
                bytes.reserveCapacity(line.utf8.count + 4)
                bytes.append(contentsOf: "<\(syslogPriority(level))>".utf8)
            }
            bytes.append(contentsOf: line.utf8)
            bytes.append(UInt8(ascii: "\n"))
            bytes.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let written = Glibc.write(2, buffer.baseAddress! + offset, buffer.count - offset)
                    if written <= 0 { break }
                    offset += written
                }
            }
        })
    }

    /// The syslog priority of a level (RFC 5424: 7 debug … 2 critical); swift-log's trace has
    /// none of its own and is debug.
    public static func syslogPriority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// Collects lines in memory (tests).
    public final class Memory: Sendable {
        private let box = NIOLockedValueBox<[String]>([])
        public init() {}
        public var lines: [String] { box.withLockedValue { $0 } }
        public var sink: LogSink { LogSink { line in self.box.withLockedValue { $0.append(line) } } }
    }
}

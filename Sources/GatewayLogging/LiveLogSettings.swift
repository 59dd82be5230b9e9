import Logging
import NIOConcurrencyHelpers
import Synchronization

/// The log level, format and redaction that every `LineLogHandler` of the process reads at each
/// event, so a reload changes them at once — in loggers already handed out too, which keep
/// their handler for life.
///
/// The level is an atomic because swift-log asks for it at every call site, filtered or not;
/// format and redactor are only read when a line is written.
public final class LiveLogSettings: Sendable {
    private let levelValue: Synchronization.Atomic<Int>
    private let rendering: NIOLockedValueBox<(LineLogHandler.Format, Redactor)>

    public init(level: Logger.Level, format: LineLogHandler.Format, redactor: Redactor = Redactor()) {
        levelValue = Synchronization.Atomic(Self.levels.firstIndex(of: level) ?? 2)
        rendering = NIOLockedValueBox((format, redactor))
    }

    private static let levels = Logger.Level.allCases

    public var level: Logger.Level { Self.levels[levelValue.load(ordering: .relaxed)] }
    public var format: LineLogHandler.Format { rendering.withLockedValue { $0.0 } }
    public var redactor: Redactor { rendering.withLockedValue { $0.1 } }

    public func update(level: Logger.Level, format: LineLogHandler.Format, redactor: Redactor) {
        rendering.withLockedValue { $0 = (format, redactor) }
        levelValue.store(Self.levels.firstIndex(of: level) ?? 2, ordering: .relaxed)
    }
}

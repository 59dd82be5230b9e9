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
    private let writeLine: @Sendable (String) -> Void

    public init(_ writeLine: @escaping @Sendable (String) -> Void) {
        self.writeLine = writeLine
    }

    public func write(_ line: String) { writeLine(line) }

    public static let standardError = LogSink { line in
        var bytes = Array(line.utf8)
        bytes.append(UInt8(ascii: "\n"))
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if written <= 0 { break }
                offset += written
            }
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

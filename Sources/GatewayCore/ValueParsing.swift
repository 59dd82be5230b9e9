import NIOCore

/// Parsers for the human-friendly values the configuration accepts.
public enum ValueParsing {
    /// `30`, `30s`, `500ms`, `5m`, `1h`, `1.5s`. A bare number is seconds.
    public static func duration(_ text: String) -> TimeAmount? {
        let trimmed = text.trimmingSpaces()
        let units: [(String, Double)] = [("ms", 1e6), ("us", 1e3), ("ns", 1), ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
        for (suffix, nanos) in units where trimmed.hasSuffix(suffix) {
            guard let value = Double(trimmed.dropLast(suffix.count)), value >= 0, value.isFinite else { return nil }
            return .nanoseconds(Int64(value * nanos))
        }
        guard let seconds = Double(trimmed), seconds >= 0, seconds.isFinite else { return nil }
        return .nanoseconds(Int64(seconds * 1e9))
    }

    /// `1048576`, `64KiB`, `1MiB`, `1MB`, `2GiB`.
    public static func byteCount(_ text: String) -> Int? {
        let trimmed = text.trimmingSpaces()
        let units: [(String, Int)] = [
            ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30),
            ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("B", 1),
        ]
        for (suffix, factor) in units where trimmed.hasSuffix(suffix) {
            guard let value = Double(trimmed.dropLast(suffix.count).trimmingSpaces()), value >= 0 else { return nil }
            return Int(value * Double(factor))
        }
        return Int(trimmed).flatMap { $0 >= 0 ? $0 : nil }
    }

    public static func bool(_ text: String) -> Bool? {
        switch text.trimmingSpaces().lowercased() {
        case "true", "yes", "on", "1": true
        case "false", "no", "off", "0": false
        default: nil
        }
    }

    /// The inverse of `duration`, for printing an effective configuration.
    public static func format(_ amount: TimeAmount) -> String {
        let ns = amount.nanoseconds
        if ns % 1_000_000_000 == 0 { return "\(ns / 1_000_000_000)s" }
        if ns % 1_000_000 == 0 { return "\(ns / 1_000_000)ms" }
        return "\(ns)ns"
    }
}

extension String {
    /// Without leading and trailing spaces and tabs (header values, list items).
    public func trimmingSpaces() -> String {
        String(Substring(self).trimmingSpaces())
    }
}

extension Substring {
    public func trimmingSpaces() -> Substring {
        var s = self
        while let first = s.first, first == " " || first == "\t" { s = s.dropFirst() }
        while let last = s.last, last == " " || last == "\t" { s = s.dropLast() }
        return s
    }
}

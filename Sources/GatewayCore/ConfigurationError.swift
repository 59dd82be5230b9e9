/// A configuration that cannot run. It names the key and the problem; the process exits 2.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        fileprivate let name: String
        public static let unknownKey = Code(name: "unknown-key")
        public static let wrongType = Code(name: "wrong-type")
        public static let invalidValue = Code(name: "invalid-value")
        public static let missingValue = Code(name: "missing-value")
        public static let duplicate = Code(name: "duplicate")
        public static let fileUnreadable = Code(name: "file-unreadable")
        public static let invalidPEM = Code(name: "invalid-pem")
        public static let syntax = Code(name: "syntax")
        public var description: String { name }
    }

    public var code: Code
    /// Dotted key, e.g. `routes.echo.max_message_bytes`; empty for the file as a whole.
    public var key: String
    public var message: String

    public init(_ code: Code, key: String, _ message: String) {
        self.code = code
        self.key = key
        self.message = message
    }

    /// The same problem, reported at `key`.
    public func at(_ key: String) -> ConfigurationError {
        ConfigurationError(code, key: key, message)
    }

    public var description: String {
        key.isEmpty ? "configuration: \(message) [\(code)]" : "configuration: \(key): \(message) [\(code)]"
    }
}

/// Why certificate material cannot be used. `field` says which setting is at fault
/// (`certificate` or `key`) so the configuration error can name the key.
public struct TLSMaterialError: Error, Sendable, CustomStringConvertible {
    public enum Field: String, Sendable { case certificate, key }
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        fileprivate let name: String
        public static let unreadable = Code(name: "unreadable")
        public static let invalidPEM = Code(name: "invalid-pem")
        public static let keyMismatch = Code(name: "key-mismatch")
        public static let generation = Code(name: "generation")
        public var description: String { name }
    }
    public var code: Code
    public var field: Field
    public var message: String
    public init(_ code: Code, field: Field, _ message: String) {
        self.code = code
        self.field = field
        self.message = message
    }
    public var description: String { "\(field.rawValue): \(message)" }
}

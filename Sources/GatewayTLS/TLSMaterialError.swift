/// Why certificate material cannot be used. `field` says which setting is at fault (its path
/// under the listener's `tls`: `certificate`, `key`, `certificates.NAME.key`, `client_ca`) so the
/// configuration error can name the key.
public struct TLSMaterialError: Error, Sendable, CustomStringConvertible {
    public struct Field: Sendable, Equatable {
        public var path: String
        public init(_ path: String) { self.path = path }
        public static let certificate = Field("certificate")
        public static let key = Field("key")
    }
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
    public var description: String { "\(field.path): \(message)" }
}

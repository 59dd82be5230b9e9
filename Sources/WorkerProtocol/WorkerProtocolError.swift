/// A link that breaks the protocol. The receiving side logs it and closes the link.
public struct WorkerProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        fileprivate let name: String
        public static let frameTooLarge = Code(name: "frame-too-large")
        public static let unknownFrameType = Code(name: "unknown-frame-type")
        public static let truncatedFrame = Code(name: "truncated-frame")
        public static let trailingBytes = Code(name: "trailing-bytes")
        public static let invalidValue = Code(name: "invalid-value")
        public static let badHello = Code(name: "bad-hello")
        public static let unexpectedFrame = Code(name: "unexpected-frame")
        public var description: String { name }
    }
    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "worker protocol: \(message) [\(code)]" }
}

/// What went wrong talking to Redis: a code for programs, a description for people.
public struct RedisError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// Redis answered with an error reply (`-ERR …`, `-WRONGPASS …`).
        case server
        /// The reply broke RESP3, or went over a size or depth limit.
        case protocolViolation
        /// No reply within the command timeout (the connection is closed: later replies
        /// could no longer be matched to their commands).
        case timeout
        /// The connection is closed or could not be made.
        case connection
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "redis \(code.rawValue): \(message)" }
}

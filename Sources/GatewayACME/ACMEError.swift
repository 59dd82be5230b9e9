/// Why getting a certificate failed, said so an operator can act on it (logged, shown by
/// `/readyz` and the admin API).
public struct ACMEError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// The ACME server could not be reached, or its HTTPS could not be trusted.
        case unreachable
        /// An answer that is not what RFC 8555 describes.
        case protocolViolation
        /// The server refused a request (an ACME problem document).
        case refused
        /// The CA could not validate a challenge (DNS, firewall, wrong answer).
        case challengeFailed
        /// An authorization offered no challenge type this gateway answers.
        case noUsableChallenge
        /// Polling an order or authorization took longer than allowed.
        case timedOut
        /// The storage folder or its files could not be used.
        case storage
        /// Another process sharing the storage holds its lock.
        case locked
        /// The issued certificate does not match what was ordered.
        case badCertificate
    }

    public var code: Code
    public var message: String
    /// The ACME problem type (`urn:ietf:params:acme:error:…`), when the server sent one.
    public var problemType: String?
    /// How long the server asked us to wait before trying again (`Retry-After`).
    public var retryAfter: Double?

    public init(_ code: Code, _ message: String, problemType: String? = nil, retryAfter: Double? = nil) {
        self.code = code
        self.message = message
        self.problemType = problemType
        self.retryAfter = retryAfter
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

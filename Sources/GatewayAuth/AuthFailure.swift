/// Why a token was refused. The description never contains the token: it is what the client
/// is told (in the 401's body) and what the log says.
public struct AuthFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case missing = "missing_token"
        case malformed = "malformed_token"
        case algorithm = "algorithm_not_allowed"
        case signature = "bad_signature"
        case expired = "expired"
        case notYetValid = "not_yet_valid"
        case audience = "wrong_audience"
        case issuer = "wrong_issuer"
        /// The header's `crit` names extensions that must be understood: this gateway
        /// implements none (RFC 7515 §4.1.11).
        case critical = "unsupported_critical_extension"
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

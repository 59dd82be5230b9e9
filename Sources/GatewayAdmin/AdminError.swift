import NIOHTTP1

/// A refused admin request: its HTTP status, a stable code for scripts, the request field at
/// fault (when one is), and a sentence for people. Sent as
/// `{"error": {"code": …, "field": …, "message": …}}`.
public struct AdminError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: HTTPResponseStatus
    public var code: String
    public var field: String?
    public var message: String
    /// For 405: the methods the path takes.
    public var allow: String?

    public init(_ status: HTTPResponseStatus, code: String, field: String? = nil, _ message: String) {
        self.status = status
        self.code = code
        self.field = field
        self.message = message
    }

    public var description: String {
        "\(status.code) \(code)\(field.map { " (\($0))" } ?? ""): \(message)"
    }

    static func invalidField(_ field: String, _ message: String) -> AdminError {
        AdminError(.badRequest, code: "invalid_field", field: field, message)
    }

    static func notFound(_ message: String) -> AdminError {
        AdminError(.notFound, code: "not_found", message)
    }
}

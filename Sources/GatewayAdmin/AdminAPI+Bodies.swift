import GatewayCore
import GatewayHub
import GatewayWebSocket
import NIOCore
import NIOHTTP1
import NIOWebSocket
import PercentEncoding

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Request bodies as the endpoints read them, and answers as they leave.
extension AdminAPI {
    // MARK: Request bodies

    /// A close by user or tag: an optional body `{"code": 4000, "reason": "…"}` (1000 and no
    /// reason by default).
    static func closeFields(_ request: AdminRequest) throws(AdminError) -> (WebSocketErrorCode, String) {
        guard request.body.readableBytes > 0 else { return (.normalClosure, "") }
        let body = try object(request)
        var code = WebSocketErrorCode.normalClosure
        var reason = ""
        for (key, value) in body.sorted(by: { $0.key < $1.key }) {
            switch (key, value) {
            case ("code", .number(let number)):
                guard let parsed = UInt16(exactly: number), WebSocketErrorCode.isValidOnWire(parsed), parsed != 1010
                else {
                    throw AdminError.invalidField(
                        "code",
                        "not a close code a server may send (1000–1003, 1007–1009, 1011–1014, 3000–4999)"
                    )
                }
                code = WebSocketErrorCode(code: parsed)
            case ("reason", .string(let text)):
                guard text.utf8.count <= 123 else {
                    throw AdminError.invalidField("reason", "a close reason is at most 123 bytes of UTF-8")
                }
                reason = text
            case ("code", _): throw AdminError.invalidField("code", "code must be a number")
            case ("reason", _): throw AdminError.invalidField("reason", "reason must be a string")
            default: throw AdminError.invalidField(key, "unknown field '\(key)'; close takes code and reason")
            }
        }
        return (code, reason)
    }

    /// The body as a JSON object; the content type, when given, must be JSON.
    static func object(_ request: AdminRequest) throws(AdminError) -> [String: JSONValue] {
        if let type = request.headers.first(name: "content-type"),
            !type.lowercased().hasPrefix("application/json")
        {
            throw AdminError(
                .unsupportedMediaType,
                code: "unsupported_media_type",
                "the body must be application/json, not \(type)"
            )
        }
        guard request.body.readableBytes > 0 else {
            throw AdminError(.badRequest, code: "invalid_json", "a JSON object body is required")
        }
        guard JSONBudget.fits(request.body.readableBytesView) else {
            throw AdminError(
                .badRequest,
                code: "too_many_values",
                "the body holds more than \(JSONBudget.maxValues) JSON values"
            )
        }
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(request.body.readableBytesView)) else {
            throw AdminError(.badRequest, code: "invalid_json", "the body is not valid JSON")
        }
        guard case .object(let object) = value else {
            throw AdminError(.badRequest, code: "invalid_json", "the body must be a JSON object")
        }
        return object
    }

    /// A message from `text` (sent as a text message) or `binary` (base64, sent as binary);
    /// exactly one of them, and no fields but those and `allowed`.
    static func message(from body: [String: JSONValue], allowed: Set<String>) throws(AdminError) -> WebSocketMessage {
        for key in body.keys.sorted() where key != "text" && key != "binary" && !allowed.contains(key) {
            throw AdminError.invalidField(key, "unknown field '\(key)'")
        }
        switch (body["text"], body["binary"]) {
        case (.some, .some):
            throw AdminError.invalidField("binary", "give either text or binary, not both")
        case (nil, nil):
            throw AdminError.invalidField(
                "text",
                allowed.contains("topic")
                    ? "one of data, text or binary is required" : "one of text or binary is required"
            )
        case (let text?, nil):
            guard case .string(let string) = text else {
                throw AdminError.invalidField("text", "text must be a string")
            }
            return WebSocketMessage(kind: .text, data: ByteBuffer(string: string))
        case (nil, let binary?):
            guard case .string(let encoded) = binary, let bytes = Data(base64Encoded: encoded) else {
                throw AdminError.invalidField("binary", "binary must be a base64 string")
            }
            return WebSocketMessage(kind: .binary, data: ByteBuffer(bytes: bytes))
        }
    }

    static func noQuery(_ query: [(String, String)]) throws(AdminError) {
        if let (name, _) = query.first {
            throw AdminError.invalidField(name, "unknown query parameter '\(name)'")
        }
    }

    /// Path and decoded query pairs (`+` and `%XX` as in HTML forms).
    static func split(_ uri: String) -> (path: String, query: [(String, String)]) {
        (RouteTable.path(of: uri), PercentDecoding.queryPairs(of: uri).map { ($0.name, $0.value) })
    }

    // MARK: Answers

    static func json(_ status: HTTPResponseStatus, _ value: some Encodable) -> AdminResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        let body = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return AdminResponse(status: status, headers: headers, body: ByteBuffer(bytes: body))
    }

    static func failure(_ error: any Error) -> AdminResponse {
        let error = error as? AdminError ?? AdminError(.internalServerError, code: "internal", "\(error)")
        var response = json(
            error.status,
            AdminPayloads.ErrorBody(error: .init(code: error.code, field: error.field, message: error.message))
        )
        if let allow = error.allow {
            response.headers.add(name: "allow", value: allow)
        }
        if error.status == .unauthorized {
            response.headers.add(name: "www-authenticate", value: "Bearer realm=\"wssgate-admin\"")
        }
        return response
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }

    /// RFC 3339 in UTC with milliseconds.
    static func timestamp(millis: Int64) -> String {
        var seconds = time_t(millis / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(millis % 1000), 3))Z"
    }
}

import GatewayCore
import Logging

/// Takes secrets out of log lines before they are written: whatever a line holds — a request
/// target, a header echoed by a worker, an error message — tokens, cookies and credentials do
/// not reach the log.
///
/// - values of metadata keys that name a secret (`authorization`, `cookie`, `token`, …);
/// - query parameters named in configuration (`?token=…` becomes `?token=[redacted]`), and
///   `name=value` / `name: value` pairs with those names anywhere in text;
/// - `Bearer …` and `Basic …` credentials, and `Cookie:` / `Set-Cookie:` header values;
/// - anything shaped like a JWT (`eyJ….eyJ….…`).
public struct Redactor: Sendable {
    public static let marker = "[redacted]"
    /// Query parameters and fields redacted unless configuration says otherwise.
    public static let defaultParameters = LogSettings.defaultRedactedParameters
    static let secretKeys: Set<String> = [
        "authorization", "proxy-authorization", "cookie", "set-cookie", "token", "password", "secret", "jwt",
    ]

    private let parameters: Set<String>

    public init(parameters: [String] = Redactor.defaultParameters) {
        self.parameters = Set(parameters.map { $0.lowercased() })
    }

    public func redact(_ value: Logger.Metadata.Value, key: String) -> Logger.Metadata.Value {
        if Self.secretKeys.contains(key.lowercased()) || parameters.contains(key.lowercased()) {
            return .string(Self.marker)
        }
        switch value {
        case .string(let text): return .string(redact(text))
        case .stringConvertible(let convertible):
            // A number or a flag holds no secret, and stays a number in JSON lines.
            if convertible is any BinaryInteger || convertible is Bool || convertible is any BinaryFloatingPoint {
                return value
            }
            return .string(redact(convertible.description))
        case .array(let values): return .array(values.map { redact($0, key: "") })
        case .dictionary(let values):
            return .dictionary(Dictionary(uniqueKeysWithValues: values.map { ($0.key, redact($0.value, key: $0.key)) }))
        }
    }

    /// `text` with every secret it holds replaced by `[redacted]`.
    public func redact(_ text: String) -> String {
        guard !text.isEmpty else { return text }
        var bytes = Array(text.utf8)
        bytes = redactCredentials(bytes)
        bytes = redactPairs(bytes)
        bytes = redactJWTs(bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: Scanners (bytes, ASCII case-insensitive)

    private static let marker8 = Array(marker.utf8)

    private static func lower(_ byte: UInt8) -> UInt8 { (byte >= 65 && byte <= 90) ? byte + 32 : byte }

    private static func matches(_ bytes: [UInt8], at index: Int, _ word: [UInt8]) -> Bool {
        guard index + word.count <= bytes.count else { return false }
        for offset in word.indices where lower(bytes[index + offset]) != word[offset] { return false }
        return true
    }

    /// Ends a secret value: whitespace, quotes, and the separators of queries, lists and JSON.
    private static func endsValue(_ byte: UInt8, stopAtSpace: Bool) -> Bool {
        switch byte {
        case UInt8(ascii: "&"), UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: ","), UInt8(ascii: "}"),
            UInt8(ascii: "]"), UInt8(ascii: ">"), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\\"):
            return true
        case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: ";"):
            return stopAtSpace
        default:
            return false
        }
    }

    /// Replaces the value that starts at `start` (up to its end) with the marker.
    private static func replaceValue(_ bytes: inout [UInt8], from start: Int, stopAtSpace: Bool) -> Int {
        var end = start
        while end < bytes.count, !endsValue(bytes[end], stopAtSpace: stopAtSpace) { end += 1 }
        guard end > start else { return start }
        bytes.replaceSubrange(start..<end, with: marker8)
        return start + marker8.count
    }

    /// `Bearer x`, `Basic x`, and the values of `Cookie:` / `Set-Cookie:` headers.
    private func redactCredentials(_ input: [UInt8]) -> [UInt8] {
        var bytes = input
        var index = 0
        let schemes: [[UInt8]] = [Array("bearer ".utf8), Array("basic ".utf8)]
        let headers: [[UInt8]] = [Array("set-cookie:".utf8), Array("cookie:".utf8), Array("authorization:".utf8)]
        while index < bytes.count {
            var advanced = false
            for scheme in schemes where Self.matches(bytes, at: index, scheme) {
                index = Self.replaceValue(&bytes, from: index + scheme.count, stopAtSpace: true)
                advanced = true
                break
            }
            if !advanced {
                for header in headers where Self.matches(bytes, at: index, header) {
                    var start = index + header.count
                    while start < bytes.count, bytes[start] == UInt8(ascii: " ") { start += 1 }
                    // A header value runs to the end of the line (cookies hold `;` and spaces).
                    index = Self.replaceValue(&bytes, from: start, stopAtSpace: false)
                    advanced = true
                    break
                }
            }
            if !advanced { index += 1 }
        }
        return bytes
    }

    /// `name=value` and `name: value` for the configured names, where `name` starts a word.
    private func redactPairs(_ input: [UInt8]) -> [UInt8] {
        var bytes = input
        var index = 0
        while index < bytes.count {
            let startsWord = index == 0 || !Self.isNameByte(bytes[index - 1])
            guard startsWord, Self.isNameByte(bytes[index]) else {
                index += 1
                continue
            }
            var end = index
            while end < bytes.count, Self.isNameByte(bytes[end]) { end += 1 }
            let name = String(decoding: bytes[index..<end].map(Self.lower), as: UTF8.self)
            var valueStart = end
            if parameters.contains(name), valueStart < bytes.count {
                if bytes[valueStart] == UInt8(ascii: "=") {
                    valueStart += 1
                } else if bytes[valueStart] == UInt8(ascii: ":")
                    || (bytes[valueStart] == UInt8(ascii: "\"") && valueStart + 1 < bytes.count
                        && bytes[valueStart + 1] == UInt8(ascii: ":"))
                {
                    // `name: value` or JSON's `"name":"value"`.
                    valueStart += bytes[valueStart] == UInt8(ascii: ":") ? 1 : 2
                    while valueStart < bytes.count,
                        bytes[valueStart] == UInt8(ascii: " ") || bytes[valueStart] == UInt8(ascii: "\"")
                    { valueStart += 1 }
                } else {
                    index = end
                    continue
                }
                if valueStart < bytes.count, !Self.matches(bytes, at: valueStart, Array(Self.marker.utf8)) {
                    index = Self.replaceValue(&bytes, from: valueStart, stopAtSpace: true)
                    continue
                }
            }
            index = end
        }
        return bytes
    }

    private static func isNameByte(_ byte: UInt8) -> Bool {
        (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122)
            || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
    }

    /// Three base64url segments whose first two start with `eyJ` (`{"` encoded): a JWT.
    private func redactJWTs(_ input: [UInt8]) -> [UInt8] {
        var bytes = input
        var index = 0
        let prefix = Array("eyJ".utf8)
        while index + 3 <= bytes.count {
            guard bytes[index] == prefix[0], bytes[index + 1] == prefix[1], bytes[index + 2] == prefix[2],
                index == 0 || !Self.isBase64URL(bytes[index - 1])
            else {
                index += 1
                continue
            }
            var end = index
            var dots = 0
            while end < bytes.count, Self.isBase64URL(bytes[end]) || (bytes[end] == UInt8(ascii: ".") && dots < 2) {
                if bytes[end] == UInt8(ascii: ".") { dots += 1 }
                end += 1
            }
            if dots == 2 {
                bytes.replaceSubrange(index..<end, with: Self.marker8)
                index += Self.marker8.count
            } else {
                index = end
            }
        }
        return bytes
    }

    private static func isBase64URL(_ byte: UInt8) -> Bool {
        (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122)
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
    }
}

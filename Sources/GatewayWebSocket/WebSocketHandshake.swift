import Crypto
import NIOCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The pieces of the RFC 6455 opening handshake that do not depend on routing.
public enum WebSocketHandshake {
    static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
    public static func acceptValue(forKey key: String) -> String {
        let digest = Insecure.SHA1.hash(data: Array((key + guid).utf8))
        return Data(digest).base64EncodedString()
    }

    /// A fresh `Sec-WebSocket-Key` for a handshake the gateway makes as a client (a `frames`
    /// proxy's upstream leg): 16 random bytes, base64.
    public static func randomKey() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Data(bytes).base64EncodedString()
    }

    /// The values of header `name` (any case) in an HTTP/1.1 response head
    /// (an upstream's 101), in order.
    public static func responseHeaderValues(_ name: String, in head: ByteBuffer) -> [String] {
        let wanted = name.lowercased()
        var values: [String] = []
        for line in String(buffer: head).split(separator: "\r\n").dropFirst() {
            guard let colon = line.firstIndex(of: ":"), line[..<colon].lowercased() == wanted else { continue }
            var value = line[line.index(after: colon)...]
            while value.first == " " || value.first == "\t" { value = value.dropFirst() }
            while value.last == " " || value.last == "\t" { value = value.dropLast() }
            values.append(String(value))
        }
        return values
    }

    /// A valid key is the base64 encoding of exactly 16 bytes (RFC 6455 §4.1).
    public static func isValidKey(_ key: String) -> Bool {
        guard key.utf8.count == 24, let decoded = Data(base64Encoded: key) else { return false }
        return decoded.count == 16
    }

    /// Splits a comma-separated header list (`Sec-WebSocket-Protocol`, `Connection`, …) into trimmed,
    /// non-empty items.
    public static func listItems<S: Sequence>(_ values: S) -> [Substring] where S.Element == String {
        var items: [Substring] = []
        for value in values {
            for item in value.split(separator: ",") {
                var trimmed = item[...]
                while trimmed.first == " " || trimmed.first == "\t" { trimmed = trimmed.dropFirst() }
                while trimmed.last == " " || trimmed.last == "\t" { trimmed = trimmed.dropLast() }
                if !trimmed.isEmpty { items.append(trimmed) }
            }
        }
        return items
    }
}

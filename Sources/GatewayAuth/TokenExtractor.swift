import GatewayCore

/// Finds the token of an upgrade request in the places a route allows, in its order: the
/// `Authorization: Bearer` header, a `Sec-WebSocket-Protocol` entry (what browsers can set), a
/// cookie, or a query parameter.
public enum TokenExtractor {
    /// `headers`: names in lower case. `target`: the request target, query included.
    public static func token(in headers: [(String, String)], target: String, settings: JWTSettings) -> String? {
        for source in settings.sources {
            switch source {
            case .header:
                for (name, value) in headers where name == "authorization" {
                    let parts = value.split(separator: " ", maxSplits: 1)
                    if parts.count == 2, parts[0].lowercased() == "bearer" {
                        return String(parts[1]).trimmingSpaces()
                    }
                }
            case .protocol:
                for (name, value) in headers where name == "sec-websocket-protocol" {
                    for item in value.split(separator: ",") {
                        let entry = String(item).trimmingSpaces()
                        if entry.hasPrefix(settings.protocolPrefix), entry.count > settings.protocolPrefix.count {
                            return String(entry.dropFirst(settings.protocolPrefix.count))
                        }
                    }
                }
            case .cookie:
                for (name, value) in headers where name == "cookie" {
                    for pair in value.split(separator: ";") {
                        let parts = pair.split(separator: "=", maxSplits: 1)
                        if parts.count == 2, String(parts[0]).trimmingSpaces() == settings.cookieName {
                            return String(parts[1]).trimmingSpaces()
                        }
                    }
                }
            case .query:
                guard let mark = target.firstIndex(of: "?") else { continue }
                for pair in target[target.index(after: mark)...].split(separator: "&") {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    if parts.count == 2, percentDecoded(parts[0]) == settings.queryParameter {
                        return percentDecoded(parts[1])
                    }
                }
            }
        }
        return nil
    }

    static func percentDecoded(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
               let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) {
                bytes.append(value)
            } else if byte == UInt8(ascii: "+") {
                bytes.append(0x20)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension String {
    func trimmingSpaces() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}

import GatewayCore
import PercentEncoding

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
                if let pair = PercentDecoding.queryPairs(of: target).first(where: { $0.name == settings.queryParameter }
                ) {
                    return pair.value
                }
            }
        }
        return nil
    }
}

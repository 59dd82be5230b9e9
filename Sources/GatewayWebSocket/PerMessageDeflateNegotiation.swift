import GatewayCore

/// The outcome of RFC 7692 negotiation: what both sides agreed to.
public struct PerMessageDeflateParameters: Sendable, Equatable {
    public var serverNoContextTakeover: Bool
    public var clientNoContextTakeover: Bool
    /// Window of our compressor.
    public var serverMaxWindowBits: Int
    /// Window the client compresses with (our decompressor may use a larger one).
    public var clientMaxWindowBits: Int
    public var level: Int
    public var memoryLevel: Int
    public var minMessageBytes: Int

    /// The `Sec-WebSocket-Extensions` value that confirms these parameters.
    public var responseHeader: String
}

/// Chooses a permessage-deflate offer from a client's `Sec-WebSocket-Extensions` headers.
public enum PerMessageDeflateNegotiation {
    /// One extension in a `Sec-WebSocket-Extensions` list, with its parameters in order.
    struct Offer: Equatable {
        var name: String
        var parameters: [(String, String?)]
        static func == (a: Offer, b: Offer) -> Bool {
            a.name == b.name && a.parameters.elementsEqual(b.parameters, by: { $0.0 == $1.0 && $0.1 == $1.1 })
        }
    }

    /// Parses `ext; p; p=v; p="v", ext2` (RFC 6455 §9.1). Malformed entries are dropped; a quoted
    /// value is unquoted.
    static func parse(_ headerValues: [String]) -> [Offer] {
        var offers: [Offer] = []
        for value in headerValues {
            for element in splitOutsideQuotes(value, on: ",") {
                let parts = splitOutsideQuotes(element, on: ";").map { trim($0) }
                guard let name = parts.first, HTTPToken.isToken(name) else { continue }
                var parameters: [(String, String?)] = []
                var valid = true
                for part in parts.dropFirst() {
                    if let equals = part.firstIndex(of: "=") {
                        let key = trim(part[..<equals])
                        var rawValue = trim(part[part.index(after: equals)...])
                        if rawValue.hasPrefix("\""), rawValue.hasSuffix("\""), rawValue.count >= 2 {
                            rawValue = String(rawValue.dropFirst().dropLast())
                        }
                        guard HTTPToken.isToken(key), HTTPToken.isToken(rawValue) else {
                            valid = false
                            break
                        }
                        parameters.append((key, rawValue))
                    } else {
                        guard HTTPToken.isToken(part) else {
                            valid = false
                            break
                        }
                        parameters.append((part, nil))
                    }
                }
                if valid { offers.append(Offer(name: name, parameters: parameters)) }
            }
        }
        return offers
    }

    /// The first acceptable permessage-deflate offer, answered with `settings`; nil when there is
    /// none (the connection then goes on without compression, as RFC 7692 allows).
    public static func negotiate(headerValues: [String], settings: CompressionSettings) -> PerMessageDeflateParameters?
    {
        guard settings.enabled else { return nil }
        offers: for offer in parse(headerValues) where offer.name == "permessage-deflate" {
            var serverNoContextTakeover = false
            var clientNoContextTakeover = false
            var serverMaxWindowBits: Int?
            var clientMaxWindowBitsOffered = false
            var clientMaxWindowBits: Int?
            var seen = Set<String>()
            for (key, value) in offer.parameters {
                // A parameter given twice, or an unknown one, makes the offer invalid (§7.1).
                guard seen.insert(key).inserted else { continue offers }
                switch key {
                case "server_no_context_takeover":
                    guard value == nil else { continue offers }
                    serverNoContextTakeover = true
                case "client_no_context_takeover":
                    guard value == nil else { continue offers }
                    clientNoContextTakeover = true
                case "server_max_window_bits":
                    guard let value, let bits = windowBits(value) else { continue offers }
                    serverMaxWindowBits = bits
                case "client_max_window_bits":
                    clientMaxWindowBitsOffered = true
                    if let value {
                        guard let bits = windowBits(value) else { continue offers }
                        clientMaxWindowBits = bits
                    }
                default:
                    continue offers
                }
            }
            // zlib cannot compress with a 256-byte window; decline rather than break the promise.
            if let serverMaxWindowBits, serverMaxWindowBits < 9 { continue offers }

            let serverBits = min(serverMaxWindowBits ?? 15, settings.serverMaxWindowBits)
            let serverReset = serverNoContextTakeover || settings.serverNoContextTakeover
            let clientReset = clientNoContextTakeover || settings.clientNoContextTakeover
            // We may only limit the client's window if it said it can be limited.
            var clientBits = 15
            var clientBitsInResponse: Int?
            if clientMaxWindowBitsOffered {
                clientBits = min(clientMaxWindowBits ?? 15, settings.clientMaxWindowBits)
                if clientBits < 15 || clientMaxWindowBits != nil { clientBitsInResponse = clientBits }
            }

            var header = "permessage-deflate"
            if serverReset { header += "; server_no_context_takeover" }
            if clientReset { header += "; client_no_context_takeover" }
            if serverMaxWindowBits != nil || serverBits < 15 { header += "; server_max_window_bits=\(serverBits)" }
            if let clientBitsInResponse { header += "; client_max_window_bits=\(clientBitsInResponse)" }
            return PerMessageDeflateParameters(
                serverNoContextTakeover: serverReset,
                clientNoContextTakeover: clientReset,
                serverMaxWindowBits: serverBits,
                clientMaxWindowBits: clientBits,
                level: settings.level,
                memoryLevel: settings.memoryLevel,
                minMessageBytes: settings.minMessageBytes,
                responseHeader: header
            )
        }
        return nil
    }

    /// `8`…`15` with no leading zero (RFC 7692 §7.1.2).
    private static func windowBits(_ text: String) -> Int? {
        guard !text.hasPrefix("0"), let bits = Int(text), (8...15).contains(bits) else { return nil }
        return bits
    }

    private static func trim<S: StringProtocol>(_ text: S) -> String {
        var s = Substring(text)
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return String(s)
    }

    private static func splitOutsideQuotes<S: StringProtocol>(_ text: S, on separator: Character) -> [Substring] {
        var parts: [Substring] = []
        let text = Substring(text)
        var start = text.startIndex
        var inQuotes = false
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if character == "\"" { inQuotes.toggle() }
            if character == separator && !inQuotes {
                parts.append(text[start..<index])
                start = text.index(after: index)
            }
            index = text.index(after: index)
        }
        parts.append(text[start...])
        return parts.filter { !$0.allSatisfy { $0 == " " || $0 == "\t" } }
    }
}

/// The two fields of a TLS ClientHello the gateway looks at before TLS starts: the server name
/// (SNI) and the offered application protocols (ALPN). TLS-ALPN-01 (RFC 8737) needs both, and
/// BoringSSL's certificate callback runs before ALPN is negotiated, so they are read here from
/// the first bytes of the connection.
public struct ClientHello: Sendable, Equatable {
    public var serverName: String?
    public var applicationProtocols: [String]

    public init(serverName: String?, applicationProtocols: [String]) {
        self.serverName = serverName
        self.applicationProtocols = applicationProtocols
    }

    public enum Parsed: Sendable, Equatable {
        /// More bytes are needed.
        case incomplete
        case hello(ClientHello)
        /// Not a ClientHello we can read: TLS itself will answer it (with an alert).
        case unreadable
    }

    /// The most a ClientHello may take here (it fits one 16 KiB record in practice).
    public static let maximumBytes = 16_384 + 5 * 4

    /// Reads the ClientHello from the start of a connection; it may span several records.
    public static func parse(_ bytes: [UInt8]) -> Parsed {
        var handshake: [UInt8] = []
        var offset = 0
        var expected: Int?
        while true {
            if let expected, handshake.count >= expected { break }
            guard bytes.count >= offset + 5 else { return bytes.count > maximumBytes ? .unreadable : .incomplete }
            // A handshake record (22) of TLS 1.x.
            guard bytes[offset] == 22, bytes[offset + 1] == 3 else { return .unreadable }
            let length = Int(bytes[offset + 3]) << 8 | Int(bytes[offset + 4])
            guard length > 0, length <= 16_384 + 2048 else { return .unreadable }
            guard bytes.count >= offset + 5 + length else {
                return offset + 5 + length > maximumBytes + 2048 ? .unreadable : .incomplete
            }
            handshake.append(contentsOf: bytes[(offset + 5)..<(offset + 5 + length)])
            offset += 5 + length
            if expected == nil {
                guard handshake.count >= 4, handshake[0] == 1 else {
                    return handshake.count < 4 ? .incomplete : .unreadable
                }
                let messageLength = Int(handshake[1]) << 16 | Int(handshake[2]) << 8 | Int(handshake[3])
                guard messageLength <= maximumBytes else { return .unreadable }
                expected = 4 + messageLength
            }
        }
        var reader = Reader(bytes: handshake, position: 4)
        return reader.readHello().map(Parsed.hello) ?? .unreadable
    }

    /// Big-endian reads over the handshake message; nil on any overrun.
    private struct Reader {
        var bytes: [UInt8]
        var position: Int
        var end: Int?

        var limit: Int { end ?? bytes.count }

        mutating func skip(_ count: Int) -> Bool {
            guard position + count <= limit else { return false }
            position += count
            return true
        }

        mutating func integer(_ width: Int) -> Int? {
            guard position + width <= limit else { return nil }
            var value = 0
            for index in 0..<width { value = value << 8 | Int(bytes[position + index]) }
            position += width
            return value
        }

        mutating func bytes(_ count: Int) -> ArraySlice<UInt8>? {
            guard position + count <= limit else { return nil }
            defer { position += count }
            return bytes[position..<(position + count)]
        }

        mutating func readHello() -> ClientHello? {
            // legacy_version, random
            guard skip(2 + 32) else { return nil }
            guard let sessionLength = integer(1), skip(sessionLength) else { return nil }
            guard let suitesLength = integer(2), skip(suitesLength) else { return nil }
            guard let compressionLength = integer(1), skip(compressionLength) else { return nil }
            var hello = ClientHello(serverName: nil, applicationProtocols: [])
            // No extensions at all: a valid, if ancient, hello.
            guard position < limit else { return hello }
            guard let extensionsLength = integer(2), position + extensionsLength <= limit else { return nil }
            let extensionsEnd = position + extensionsLength
            while position < extensionsEnd {
                guard let type = integer(2), let length = integer(2), position + length <= extensionsEnd else {
                    return nil
                }
                let extensionEnd = position + length
                var inner = Reader(bytes: bytes, position: position, end: extensionEnd)
                switch type {
                case 0:  // server_name
                    guard let listLength = inner.integer(2), inner.position + listLength == extensionEnd else {
                        return nil
                    }
                    while inner.position < extensionEnd {
                        // RFC 6066 §3: a HostName is 1 to 2^16 − 1 bytes; BoringSSL refuses an
                        // empty one too.
                        guard let nameType = inner.integer(1), let nameLength = inner.integer(2), nameLength > 0,
                            let name = inner.bytes(nameLength)
                        else { return nil }
                        if nameType == 0, hello.serverName == nil {
                            hello.serverName = String(decoding: name, as: UTF8.self).lowercased()
                        }
                    }
                case 16:  // application_layer_protocol_negotiation
                    guard let listLength = inner.integer(2), inner.position + listLength == extensionEnd else {
                        return nil
                    }
                    while inner.position < extensionEnd {
                        guard let protocolLength = inner.integer(1), protocolLength > 0,
                            let name = inner.bytes(protocolLength)
                        else { return nil }
                        hello.applicationProtocols.append(String(decoding: name, as: UTF8.self))
                    }
                default:
                    break
                }
                position = extensionEnd
            }
            return hello
        }
    }
}

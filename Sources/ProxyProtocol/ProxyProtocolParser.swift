import GatewayCore

/// Reads the PROXY protocol header (versions 1 and 2, haproxy.org's proxy-protocol.txt) that a
/// layer-4 load balancer — HAProxy, AWS NLB, a Kubernetes ingress — puts before a connection's
/// first byte to say who the client is. Pure: bytes in, a verdict out.
///
/// Strict, because the header decides who the gateway believes a client is: a v1 line is the
/// exact grammar (single spaces, address literals of the named family, ports without leading
/// zeros) within 107 bytes; a v2 header must be version 2 with a known command, family and
/// transport, its address block and TLVs must fill its length exactly, a CRC32C TLV must match,
/// and the whole header is bounded (`maxV2Length`).
public enum ProxyProtocolParser {
    /// TLV types of version 2 (section 2.2).
    public enum TLVType {
        public static let alpn: UInt8 = 0x01
        public static let authority: UInt8 = 0x02
        public static let crc32c: UInt8 = 0x03
        public static let noop: UInt8 = 0x04
        public static let uniqueID: UInt8 = 0x05
        public static let ssl: UInt8 = 0x20
        public static let netns: UInt8 = 0x30
    }

    public enum Outcome: Equatable, Sendable {
        /// The bytes so far are a header's start: read more.
        case needMore
        /// The connection does not start with a header.
        case notAHeader
        case header(ProxyProtocolHeader)
    }

    public static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    static let v1Prefix: [UInt8] = Array("PROXY ".utf8)
    /// The longest v1 line, CRLF included (section 2.1).
    public static let maxV1Length = 107
    /// The longest v2 header the gateway takes: the 16 fixed bytes and up to 4 KiB of addresses
    /// and TLVs (the format allows 64 KiB; no load balancer sends more than a few hundred).
    public static let maxV2Length = 16 + 4096

    /// Looks at the first bytes of a connection.
    public static func parse(_ bytes: [UInt8]) throws(ProxyProtocolError) -> Outcome {
        if startsLike(bytes, v2Signature) {
            return bytes.count < 16 ? .needMore : try parseV2(bytes)
        }
        if startsLike(bytes, v1Prefix) {
            return bytes.count < v1Prefix.count ? .needMore : try parseV1(bytes)
        }
        return .notAHeader
    }

    /// Whether `bytes` and `prefix` agree as far as both go (an empty input agrees).
    private static func startsLike(_ bytes: [UInt8], _ prefix: [UInt8]) -> Bool {
        zip(bytes, prefix).allSatisfy { $0 == $1 }
    }

    // MARK: Version 1

    private static func parseV1(_ bytes: [UInt8]) throws(ProxyProtocolError) -> Outcome {
        let window = min(bytes.count, maxV1Length)
        if let lf = (0..<window).first(where: { bytes[$0] == 0x0A }), !(lf > 0 && bytes[lf - 1] == 0x0D) {
            return try malformedV1("an LF without CR")
        }
        guard let cr = (0..<window).first(where: { bytes[$0] == 0x0D }) else {
            if bytes.count >= maxV1Length { throw ProxyProtocolError(.lineTooLong, "no CRLF within 107 bytes") }
            return .needMore
        }
        // CRLF must end within the 107 bytes.
        guard cr + 1 < maxV1Length else { throw ProxyProtocolError(.lineTooLong, "no CRLF within 107 bytes") }
        guard cr + 1 < bytes.count else { return .needMore }
        guard bytes[cr + 1] == 0x0A else { return try malformedV1("a CR not followed by LF") }
        let line = bytes[..<cr]
        guard line.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else { return try malformedV1("control or non-ASCII bytes") }
        let parts = line.split(separator: 0x20, omittingEmptySubsequences: false).map {
            String(decoding: $0, as: UTF8.self)
        }
        let length = cr + 2
        guard parts.count >= 2, parts[0] == "PROXY" else { return try malformedV1("no family") }
        switch parts[1] {
        case "UNKNOWN":
            // The sender could not say; anything after the family is ignored (section 2.1).
            return .header(ProxyProtocolHeader(version: 1, source: nil, destination: nil, length: length))
        case "TCP4", "TCP6":
            guard parts.count == 6 else { return try malformedV1("not six fields") }
            let v6 = parts[1] == "TCP6"
            guard let source = address(parts[2], v6: v6), let destination = address(parts[3], v6: v6) else {
                return try malformedV1("an address is not a \(parts[1]) literal")
            }
            guard let sourcePort = port(parts[4]), let destinationPort = port(parts[5]) else {
                return try malformedV1("a port is not 0–65535 without leading zeros")
            }
            return .header(
                ProxyProtocolHeader(
                    version: 1,
                    source: .init(address: source, port: sourcePort),
                    destination: .init(address: destination, port: destinationPort),
                    length: length
                )
            )
        default:
            return try malformedV1("unknown family '\(parts[1].prefix(8))'")
        }
    }

    private static func malformedV1(_ why: String) throws(ProxyProtocolError) -> Outcome {
        throw ProxyProtocolError(.malformedV1, "PROXY v1 line: \(why)")
    }

    /// An address literal of the named family: dotted IPv4 for TCP4, IPv6 (with colons) for TCP6.
    private static func address(_ text: String, v6: Bool) -> [UInt8]? {
        guard text.contains(":") == v6, let bytes = IPNetwork.parseAddress(text) else { return nil }
        return bytes
    }

    private static func port(_ text: String) -> UInt16? {
        guard (1...5).contains(text.utf8.count), text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            text == "0" || !text.hasPrefix("0"), let value = Int(text), value <= 65535
        else { return nil }
        return UInt16(value)
    }

    // MARK: Version 2

    private static func parseV2(_ bytes: [UInt8]) throws(ProxyProtocolError) -> Outcome {
        let version = bytes[12] >> 4
        let command = bytes[12] & 0x0F
        guard version == 2 else { throw ProxyProtocolError(.unsupported, "PROXY v2: version \(version)") }
        guard command <= 1 else { throw ProxyProtocolError(.unsupported, "PROXY v2: command \(command)") }
        let family = bytes[13] >> 4
        let transport = bytes[13] & 0x0F
        let length = 16 + (Int(bytes[14]) << 8 | Int(bytes[15]))
        guard length <= maxV2Length else {
            throw ProxyProtocolError(.tooLong, "PROXY v2 header of \(length) bytes (at most \(maxV2Length))")
        }
        guard bytes.count >= length else { return .needMore }
        // LOCAL: the proxy speaking for itself (a health check); its address block is ignored.
        if command == 0 {
            return .header(ProxyProtocolHeader(version: 2, source: nil, destination: nil, length: length))
        }
        guard family <= 3, transport <= 2 else {
            throw ProxyProtocolError(.unsupported, "PROXY v2: family \(family), transport \(transport)")
        }
        guard transport != 2 else { throw ProxyProtocolError(.datagram, "PROXY v2: a datagram source") }
        if family == 0 {
            // UNSPEC: the proxy does not know; the connection's own endpoints apply.
            return .header(ProxyProtocolHeader(version: 2, source: nil, destination: nil, length: length))
        }
        guard transport == 1 else { throw ProxyProtocolError(.unsupported, "PROXY v2: a known family over UNSPEC") }
        let addressLength = [1: 12, 2: 36, 3: 216][Int(family)]!
        guard length - 16 >= addressLength else {
            throw ProxyProtocolError(
                .malformedV2,
                "PROXY v2: \(length - 16) bytes for a \(addressLength)-byte address block"
            )
        }
        var source: ProxyProtocolHeader.Endpoint?
        var destination: ProxyProtocolHeader.Endpoint?
        func port(at offset: Int) -> UInt16 { UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1]) }
        switch family {
        case 1:
            source = .init(address: Array(bytes[16..<20]), port: port(at: 24))
            destination = .init(address: Array(bytes[20..<24]), port: port(at: 26))
        case 2:
            source = .init(address: Array(bytes[16..<32]), port: port(at: 48))
            destination = .init(address: Array(bytes[32..<48]), port: port(at: 50))
        default:
            break  // Unix sockets: no address the gateway can use; the connection's own applies.
        }
        let tlvs = try parseTLVs(bytes, from: 16 + addressLength, to: length, headerLength: length)
        return .header(
            ProxyProtocolHeader(version: 2, source: source, destination: destination, tlvs: tlvs, length: length)
        )
    }

    private static func parseTLVs(
        _ bytes: [UInt8],
        from start: Int,
        to end: Int,
        headerLength: Int,
        nested: Bool = false
    ) throws(ProxyProtocolError) -> [ProxyProtocolHeader.TLV] {
        var tlvs: [ProxyProtocolHeader.TLV] = []
        var offset = start
        while offset < end {
            guard end - offset >= 3 else {
                throw ProxyProtocolError(.malformedV2, "PROXY v2: \(end - offset) stray bytes after the TLVs")
            }
            let type = bytes[offset]
            let valueLength = Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2])
            let valueStart = offset + 3
            guard valueLength <= end - valueStart else {
                throw ProxyProtocolError(
                    .malformedV2,
                    "PROXY v2: TLV 0x\(String(type, radix: 16)) runs past the header"
                )
            }
            let value = Array(bytes[valueStart..<valueStart + valueLength])
            switch type {
            case TLVType.crc32c where !nested:
                guard valueLength == 4 else {
                    throw ProxyProtocolError(.malformedV2, "PROXY v2: a CRC32C of \(valueLength) bytes")
                }
                var zeroed = Array(bytes[..<headerLength])
                for index in valueStart..<valueStart + 4 { zeroed[index] = 0 }
                let sent = value.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                guard CRC32C.checksum(zeroed) == sent else {
                    throw ProxyProtocolError(.checksum, "PROXY v2: the CRC32C does not match")
                }
            case TLVType.uniqueID where valueLength > 128:
                throw ProxyProtocolError(.malformedV2, "PROXY v2: a unique ID of \(valueLength) bytes (at most 128)")
            case TLVType.authority where valueLength == 0 || !value.allSatisfy({ $0 > 0x20 && $0 < 0x7F }):
                throw ProxyProtocolError(.malformedV2, "PROXY v2: an authority that is not a host name")
            case TLVType.ssl where !nested:
                // client (1 byte), verify (4 bytes), then sub-TLVs that fill the rest exactly.
                guard valueLength >= 5 else {
                    throw ProxyProtocolError(.malformedV2, "PROXY v2: an SSL TLV of \(valueLength) bytes")
                }
                _ = try parseTLVs(
                    bytes,
                    from: valueStart + 5,
                    to: valueStart + valueLength,
                    headerLength: headerLength,
                    nested: true
                )
            default:
                break  // ALPN, NOOP, NETNS, the SSL sub-types and custom types: kept, not interpreted.
            }
            tlvs.append(.init(type: type, value: value))
            offset = valueStart + valueLength
        }
        return tlvs
    }
}

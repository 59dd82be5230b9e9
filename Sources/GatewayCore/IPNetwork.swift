#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An IP address or a CIDR block (`10.0.0.0/8`, `::1/128`, `192.0.2.7`): the trusted-proxy
/// list. IPv4-mapped IPv6 addresses (`::ffff:192.0.2.7`) count as their IPv4 address.
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    /// 4 or 16 bytes, host bits cleared.
    public let bytes: [UInt8]
    public let prefix: Int

    public init?(parsing text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = Self.parseAddress(String(parts[0])) else { return nil }
        let maxPrefix = address.count * 8
        var prefix = maxPrefix
        if parts.count == 2 {
            guard let value = Int(parts[1]), (0...maxPrefix).contains(value) else { return nil }
            prefix = value
        }
        self.prefix = prefix
        self.bytes = Self.masked(address, prefix: prefix)
    }

    /// Whether `address` (4 or 16 bytes) is inside this block.
    public func contains(_ address: [UInt8]) -> Bool {
        address.count == bytes.count && Self.masked(address, prefix: prefix) == bytes
    }

    /// The bytes of an IPv4 or IPv6 literal (brackets allowed), IPv4-mapped ones as IPv4.
    public static func parseAddress(_ text: String) -> [UInt8]? {
        var literal = Substring(text)
        if literal.hasPrefix("["), literal.hasSuffix("]") { literal = literal.dropFirst().dropLast() }
        var v4 = in_addr()
        if inet_pton(AF_INET, String(literal), &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, String(literal), &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
            return Array(bytes[12..<16])
        }
        return bytes
    }

    private static func masked(_ address: [UInt8], prefix: Int) -> [UInt8] {
        var result = address
        for index in result.indices {
            let bitsHere = max(0, min(8, prefix - index * 8))
            result[index] &= bitsHere == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - bitsHere))
        }
        return result
    }

    public var description: String {
        var buffer = [CChar](repeating: 0, count: 64)
        var copy = bytes
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        _ = copy.withUnsafeMutableBytes { inet_ntop(family, $0.baseAddress, &buffer, 64) }
        let text = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: text, as: UTF8.self) + "/\(prefix)"
    }
}

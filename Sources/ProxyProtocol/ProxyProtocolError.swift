/// A PROXY protocol header that breaks the specification (haproxy.org's proxy-protocol.txt) or
/// the gateway's bounds: the connection is refused, and the code says why in the log.
public struct ProxyProtocolError: Error, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// Version 1: not `PROXY <family> <src> <dst> <sport> <dport>\r\n` as specified.
        case malformedV1 = "malformed_v1"
        /// Version 1: no CRLF within the 107 bytes a line may have.
        case lineTooLong = "line_too_long"
        /// Version 2: a version other than 2, a command other than LOCAL or PROXY, or an
        /// unknown family or transport.
        case unsupported
        /// Version 2: the address block or a TLV does not fit in the length the header gives,
        /// or the TLVs do not fill it exactly.
        case malformedV2 = "malformed_v2"
        /// Version 2: a header longer than the gateway accepts.
        case tooLong = "too_long"
        /// Version 2: the CRC32C TLV does not match the header.
        case checksum
        /// A datagram (UDP, unix datagram) source: this is a stream listener.
        case datagram
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(message) [\(code.rawValue)]" }
}

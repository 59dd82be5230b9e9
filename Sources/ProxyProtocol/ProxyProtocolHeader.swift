/// What a PROXY protocol header (version 1 or 2) said about the connection it came on.
public struct ProxyProtocolHeader: Sendable, Equatable {
    /// An endpoint the proxy named: the address as 4 or 16 bytes, and the port.
    public struct Endpoint: Sendable, Equatable {
        public var address: [UInt8]
        public var port: UInt16
        public init(address: [UInt8], port: UInt16) {
            self.address = address
            self.port = port
        }
    }

    /// One TLV of a version 2 header (type, value), in the order sent.
    public struct TLV: Sendable, Equatable {
        public var type: UInt8
        public var value: [UInt8]
        public init(type: UInt8, value: [UInt8]) {
            self.type = type
            self.value = value
        }
    }

    public var version: Int
    /// The client and the address it connected to, for a proxied TCP connection. Nil for a
    /// LOCAL command (the proxy's own health check), an `UNKNOWN` (v1) or `UNSPEC` (v2) family,
    /// and Unix-socket sources: the connection's own endpoints apply then, as the specification
    /// says.
    public var source: Endpoint?
    public var destination: Endpoint?
    public var tlvs: [TLV]
    /// The header's length in bytes: what follows it is the client's own stream.
    public var length: Int

    public init(version: Int, source: Endpoint?, destination: Endpoint?, tlvs: [TLV] = [], length: Int) {
        self.version = version
        self.source = source
        self.destination = destination
        self.tlvs = tlvs
        self.length = length
    }

    /// The `PP2_TYPE_AUTHORITY` TLV (the host name the client asked the proxy for), if sent.
    public var authority: String? {
        tlvs.first { $0.type == ProxyProtocolParser.TLVType.authority }.map {
            String(decoding: $0.value, as: UTF8.self)
        }
    }
}

import GatewayTLS

/// The ClientHello reader (TLS-ALPN-01 routing reads SNI and ALPN before TLS starts).
///
/// Invariants: a verdict does not depend on how much arrived — a prefix that is not
/// `incomplete` reads the same as the whole; `incomplete` never holds past the reader's size
/// bound (a peer cannot make it buffer without end); no name read is empty or longer than its
/// length field allows.
enum ClientHelloTarget {
    static let target = FuzzTarget(name: "client-hello") { data throws(FuzzFailure) in
        let bytes = [UInt8](data)
        let whole = ClientHello.parse(bytes)
        if case .incomplete = whole {
            try FuzzFailure.check(
                bytes.count <= ClientHello.maximumBytes + 2048 + 5,
                "\(bytes.count) bytes still read as incomplete"
            )
        }
        if case .hello(let hello) = whole {
            if let name = hello.serverName {
                try FuzzFailure.check(
                    !name.isEmpty && name.utf8.count <= 0xFFFF,
                    "server name \(name.debugDescription)"
                )
            }
            for proto in hello.applicationProtocols {
                try FuzzFailure.check(!proto.isEmpty && proto.utf8.count <= 255, "ALPN entry \(proto.debugDescription)")
            }
        }
        for cut in Set([bytes.count / 2, bytes.count - 1, 5, 9]) where cut > 0 && cut < bytes.count {
            let part = ClientHello.parse(Array(bytes[..<cut]))
            guard part != .incomplete else { continue }
            try FuzzFailure.check(
                part == whole,
                "the first \(cut) bytes read \(part), all \(bytes.count) read \(whole)"
            )
        }
    }
}

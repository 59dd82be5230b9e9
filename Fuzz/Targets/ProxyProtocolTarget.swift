import ProxyProtocol

/// The PROXY protocol header (v1 and v2) a load balancer puts before a connection's first byte.
///
/// Invariants: a header never claims more bytes than were given, nor more than the bounds (107
/// for v1, `maxV2Length` for v2); a named client's address is 4 or 16 bytes; what follows a
/// header does not change the verdict on it; every shorter prefix of a header asks for more
/// (reads of any size agree); a prefix that needs more never becomes "not a header" with more
/// bytes of the same header.
enum ProxyProtocolTarget {
    static let target = FuzzTarget(name: "proxy-protocol") { data throws(FuzzFailure) in
        let bytes = Array(data)
        let outcome: ProxyProtocolParser.Outcome
        do {
            outcome = try ProxyProtocolParser.parse(bytes)
        } catch {
            // A refusal must not depend on bytes after the header's bound either.
            let bound = bytes.first == 0x50 ? ProxyProtocolParser.maxV1Length : ProxyProtocolParser.maxV2Length
            if bytes.count > bound {
                let again = Result { () throws(ProxyProtocolError) in
                    try ProxyProtocolParser.parse(Array(bytes[..<bound]))
                }
                if case .success(let verdict) = again {
                    try FuzzFailure.check(
                        verdict == .needMore,
                        "refused with \(error) but its first \(bound) bytes are \(verdict)"
                    )
                }
            }
            return
        }
        guard case .header(let header) = outcome else { return }
        try FuzzFailure.check(header.length <= bytes.count, "a header of \(header.length) bytes in \(bytes.count)")
        let bound = header.version == 1 ? ProxyProtocolParser.maxV1Length : ProxyProtocolParser.maxV2Length
        try FuzzFailure.check(header.length <= bound, "a v\(header.version) header of \(header.length) bytes")
        for endpoint in [header.source, header.destination].compactMap({ $0 }) {
            try FuzzFailure.check(
                [4, 16].contains(endpoint.address.count),
                "an address of \(endpoint.address.count) bytes"
            )
        }
        let alone = Array(bytes[..<header.length])
        try FuzzFailure.check(
            (try? ProxyProtocolParser.parse(alone)) == outcome,
            "the header alone parses differently from the header with \(bytes.count - header.length) bytes behind it"
        )
        for cut in [0, 1, header.length / 2, header.length - 1] where cut < header.length {
            let prefix = Array(bytes[..<cut])
            try FuzzFailure.check(
                (try? ProxyProtocolParser.parse(prefix)) == .needMore,
                "the first \(cut) bytes of a \(header.length)-byte header do not ask for more"
            )
        }
    }
}

import GatewayCore
import NIOCore
import NIOHTTP1

/// The address of the client behind a connection: the TCP peer, or — when the peer is a
/// trusted proxy — the address that proxy names in `Forwarded` (RFC 7239) or
/// `X-Forwarded-For`. The chain is read from the right: each trusted hop is skipped, and the
/// first address that is not trusted is the client. Headers from untrusted peers are ignored,
/// so a client cannot pick its own address.
enum ClientAddress {
    static func resolve(
        peer: SocketAddress?,
        headers: HTTPHeaders,
        trusted: [IPNetwork]
    ) -> (bytes: [UInt8]?, text: String) {
        guard let peer, let peerText = peer.ipAddress, let peerBytes = IPNetwork.parseAddress(peerText) else {
            return (nil, "unix")
        }
        func isTrusted(_ bytes: [UInt8]) -> Bool { trusted.contains { $0.contains(bytes) } }
        guard !trusted.isEmpty, isTrusted(peerBytes) else { return (peerBytes, peerText) }
        let chain = forwardedChain(headers)
        var client = (bytes: peerBytes, text: peerText)
        for hop in chain.reversed() {
            guard let bytes = IPNetwork.parseAddress(hop) else { break }
            client = (bytes, hop)
            if !isTrusted(bytes) { break }
        }
        return client
    }

    /// The addresses the proxies reported, leftmost first: `Forwarded`'s `for=` values when the
    /// header is present, else `X-Forwarded-For`'s list.
    static func forwardedChain(_ headers: HTTPHeaders) -> [String] {
        let forwarded = headers["forwarded"]
        if !forwarded.isEmpty {
            var chain: [String] = []
            for element in forwarded.joined(separator: ",").split(separator: ",") {
                for pair in element.split(separator: ";") {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    guard parts.count == 2, String(parts[0]).trimmingSpaces().lowercased() == "for" else { continue }
                    var value = String(parts[1]).trimmingSpaces()
                    if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 {
                        value = String(value.dropFirst().dropLast())
                    }
                    // `[v6]:port` or `v4:port`: the address without the port.
                    if value.hasPrefix("["), let close = value.firstIndex(of: "]") {
                        value = String(value[value.index(after: value.startIndex)..<close])
                    } else if value.filter({ $0 == ":" }).count == 1, let colon = value.firstIndex(of: ":") {
                        value = String(value[..<colon])
                    }
                    chain.append(value)
                }
            }
            return chain
        }
        return headers["x-forwarded-for"].joined(separator: ",").split(separator: ",").map {
            String($0.trimmingSpaces())
        }
    }
}

import PercentEncoding

/// Percent decoding of request targets (static paths, queries for the admin API, token lookup
/// and the workers' `:query`).
///
/// Invariants: only well-formed escapes (`%` and two hex digits) are accepted; encoding then
/// decoding gives the text back; a query's pairs, re-encoded, parse to the same pairs.
enum PercentDecodingTarget {
    static let target = FuzzTarget(name: "percent-decoding") { data throws(FuzzFailure) in
        let text = String(decoding: data, as: UTF8.self)
        for plusAsSpace in [false, true] {
            guard let decoded = PercentDecoding.decode(text, plusAsSpace: plusAsSpace) else { continue }
            let bytes = Array(text.utf8)
            var index = 0
            while index < bytes.count {
                if bytes[index] == UInt8(ascii: "%") {
                    try FuzzFailure.check(
                        index + 2 < bytes.count && isHex(bytes[index + 1]) && isHex(bytes[index + 2]),
                        "\(text.debugDescription) was decoded (to \(decoded.debugDescription)) with a malformed escape at \(index)"
                    )
                    index += 3
                } else {
                    index += 1
                }
            }
            if !plusAsSpace && !text.contains("%") {
                try FuzzFailure.check(
                    decoded == text,
                    "\(text.debugDescription) has no escape but decodes to \(decoded.debugDescription)"
                )
            }
        }
        let encoded = PercentDecoding.encode(text)
        try FuzzFailure.check(
            encoded.utf8.allSatisfy { isUnreserved($0) || $0 == UInt8(ascii: "%") || isHex($0) },
            "encode(\(text.debugDescription)) = \(encoded.debugDescription) is not all unreserved characters and escapes"
        )
        try FuzzFailure.check(
            PercentDecoding.decode(encoded) == text,
            "\(text.debugDescription) does not survive encode then decode"
        )
        let pairs = PercentDecoding.pairs(ofQuery: text)
        let query = pairs.map { PercentDecoding.encode($0.name) + "=" + PercentDecoding.encode($0.value) }
            .joined(separator: "&")
        let again = PercentDecoding.pairs(ofQuery: query)
        try FuzzFailure.check(
            again.count == pairs.count && zip(again, pairs).allSatisfy { $0.name == $1.name && $0.value == $1.value },
            "the pairs of \(text.debugDescription) re-encoded as \(query.debugDescription) parse differently"
        )
    }

    private static func isHex(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"),
            UInt8(ascii: "A")...UInt8(ascii: "F"):
            return true
        default:
            return false
        }
    }

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}

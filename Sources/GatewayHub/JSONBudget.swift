/// How much JSON the gateway decodes from one message: decoding costs time by the value (about
/// a microsecond and a half each), so a megabyte of `[1,1,1,…]` — half a million values — would
/// hold an event loop for most of a second, and every client on it with it. The text is counted
/// first, in one pass over its bytes, and refused when it holds more than `maxValues` values.
public enum JSONBudget {
    /// Values a hub client's message, or an admin request's body, may hold.
    public static let maxValues = 10_000

    /// Whether `bytes` holds at most `maxValues` values: elements of arrays and objects and the
    /// containers themselves, as their separators and openings show them outside strings.
    public static func fits(_ bytes: some Sequence<UInt8>, maxValues: Int = maxValues) -> Bool {
        var count = 0
        var inString = false
        var escaped = false
        for byte in bytes {
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: ","), UInt8(ascii: "["), UInt8(ascii: "{"):
                count += 1
                if count > maxValues { return false }
            default: break
            }
        }
        return true
    }
}

import NIOCore

/// A RESP3 value as Redis sends it. Strings that Redis may fill with binary data stay
/// `ByteBuffer`s (bulk strings, published payloads); the rest are decoded.
public enum RESPValue: Sendable, Equatable {
    case simpleString(String)
    case error(RedisError)
    case integer(Int64)
    /// A bulk string; nil is RESP2's null bulk string.
    case bulkString(ByteBuffer?)
    case array([RESPValue])
    case null
    case double(Double)
    case boolean(Bool)
    case bigNumber(String)
    case map([(RESPValue, RESPValue)])
    case set([RESPValue])
    /// Out-of-band data: published messages and subscription confirmations.
    case push([RESPValue])

    public static func == (lhs: RESPValue, rhs: RESPValue) -> Bool {
        switch (lhs, rhs) {
        case (.simpleString(let a), .simpleString(let b)): return a == b
        case (.error(let a), .error(let b)): return a == b
        case (.integer(let a), .integer(let b)): return a == b
        case (.bulkString(let a), .bulkString(let b)): return a == b
        case (.array(let a), .array(let b)), (.set(let a), .set(let b)), (.push(let a), .push(let b)): return a == b
        case (.null, .null): return true
        case (.double(let a), .double(let b)): return a == b
        case (.boolean(let a), .boolean(let b)): return a == b
        case (.bigNumber(let a), .bigNumber(let b)): return a == b
        case (.map(let a), .map(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// The value as text: simple and bulk strings (UTF-8), integers.
    public var string: String? {
        switch self {
        case .simpleString(let text), .bigNumber(let text): return text
        case .bulkString(let buffer?): return String(buffer: buffer)
        case .integer(let value): return String(value)
        default: return nil
        }
    }

    public var bytes: ByteBuffer? {
        switch self {
        case .bulkString(let buffer?): return buffer
        case .simpleString(let text): return ByteBuffer(string: text)
        default: return nil
        }
    }

    public var integer: Int64? {
        switch self {
        case .integer(let value): return value
        case .simpleString(let text): return Int64(text)
        case .bulkString(let buffer?): return Int64(String(buffer: buffer))
        default: return nil
        }
    }

    /// The elements of an array, set or push.
    public var elements: [RESPValue]? {
        switch self {
        case .array(let values), .set(let values), .push(let values): return values
        default: return nil
        }
    }
}

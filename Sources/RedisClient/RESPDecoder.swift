import NIOCore

/// Splits Redis's byte stream into RESP3 values, strictly and within bounds: a bulk string
/// longer than `maxBulkBytes`, an aggregate with more than `maxElements` elements, nesting deeper
/// than `maxDepth`, or a line longer than `maxLineBytes` is refused before it is buffered, so
/// a broken or hostile server cannot make the gateway allocate what it announces.
public struct RESPDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = RESPValue

    public struct Limits: Sendable {
        public var maxBulkBytes: Int
        public var maxElements: Int
        public var maxDepth: Int
        public var maxLineBytes: Int
        public init(
            maxBulkBytes: Int = 16 << 20,
            maxElements: Int = 1 << 20,
            maxDepth: Int = 8,
            maxLineBytes: Int = 64 << 10
        ) {
            self.maxBulkBytes = maxBulkBytes
            self.maxElements = maxElements
            self.maxDepth = maxDepth
            self.maxLineBytes = maxLineBytes
        }
    }

    public let limits: Limits

    public init(limits: Limits = .init()) {
        self.limits = limits
    }

    /// Marks "not all of it has arrived yet".
    private struct Incomplete: Error {}

    public mutating func decode(buffer: inout ByteBuffer) throws -> RESPValue? {
        var copy = buffer
        do {
            let value = try parse(&copy, depth: 0)
            buffer = copy
            return value
        } catch is Incomplete {
            return nil
        }
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> RESPValue? {
        try decode(buffer: &buffer)
    }

    private func parse(_ buffer: inout ByteBuffer, depth: Int) throws -> RESPValue {
        guard depth <= limits.maxDepth else {
            throw RedisError(.protocolViolation, "reply nested deeper than \(limits.maxDepth)")
        }
        guard let marker = buffer.readInteger(as: UInt8.self) else { throw Incomplete() }
        switch marker {
        case UInt8(ascii: "+"): return .simpleString(try line(&buffer))
        case UInt8(ascii: "-"): return .error(RedisError(.server, try line(&buffer)))
        case UInt8(ascii: ":"):
            let text = try line(&buffer)
            guard let value = Int64(text) else { throw RedisError(.protocolViolation, "integer reply '\(text)'") }
            return .integer(value)
        case UInt8(ascii: "$"), UInt8(ascii: "!"), UInt8(ascii: "="):
            let length = try count(&buffer, of: "bulk string")
            guard length >= 0 else {
                guard marker == UInt8(ascii: "$"), length == -1 else {
                    throw RedisError(.protocolViolation, "negative length \(length)")
                }
                return .bulkString(nil)
            }
            guard length <= limits.maxBulkBytes else {
                throw RedisError(
                    .protocolViolation,
                    "bulk string of \(length) bytes is over the limit of \(limits.maxBulkBytes)"
                )
            }
            guard buffer.readableBytes >= length + 2 else { throw Incomplete() }
            let body = buffer.readSlice(length: length)!
            guard buffer.readInteger(as: UInt16.self) == 0x0d0a else {
                throw RedisError(.protocolViolation, "bulk string not ended by CRLF")
            }
            if marker == UInt8(ascii: "!") { return .error(RedisError(.server, String(buffer: body))) }
            if marker == UInt8(ascii: "=") {
                // Verbatim string: "txt:" or "mkd:" then the text.
                return .bulkString(
                    body.getSlice(
                        at: body.readerIndex + min(4, body.readableBytes),
                        length: max(0, body.readableBytes - 4)
                    )
                )
            }
            return .bulkString(body)
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"):
            let length = try count(&buffer, of: "aggregate")
            if length == -1, marker == UInt8(ascii: "*") { return .null }
            guard length >= 0 else { throw RedisError(.protocolViolation, "negative length \(length)") }
            var values: [RESPValue] = []
            values.reserveCapacity(min(length, 1024))
            for _ in 0..<length { values.append(try parse(&buffer, depth: depth + 1)) }
            switch marker {
            case UInt8(ascii: "~"): return .set(values)
            case UInt8(ascii: ">"): return .push(values)
            default: return .array(values)
            }
        case UInt8(ascii: "%"), UInt8(ascii: "|"):
            let length = try count(&buffer, of: "map")
            guard length >= 0 else { throw RedisError(.protocolViolation, "negative length \(length)") }
            var pairs: [(RESPValue, RESPValue)] = []
            for _ in 0..<length {
                pairs.append((try parse(&buffer, depth: depth + 1), try parse(&buffer, depth: depth + 1)))
            }
            // An attribute (`|`) annotates the value after it; only the value is kept. It counts
            // as a level: a chain of attributes would otherwise recurse without bound.
            return marker == UInt8(ascii: "|") ? try parse(&buffer, depth: depth + 1) : .map(pairs)
        case UInt8(ascii: "_"):
            _ = try line(&buffer)
            return .null
        case UInt8(ascii: ","):
            let text = try line(&buffer)
            switch text {
            case "inf": return .double(.infinity)
            case "-inf": return .double(-.infinity)
            case "nan": return .double(.nan)
            default:
                guard let value = Double(text) else { throw RedisError(.protocolViolation, "double reply '\(text)'") }
                return .double(value)
            }
        case UInt8(ascii: "#"):
            switch try line(&buffer) {
            case "t": return .boolean(true)
            case "f": return .boolean(false)
            case let other: throw RedisError(.protocolViolation, "boolean reply '\(other)'")
            }
        case UInt8(ascii: "("): return .bigNumber(try line(&buffer))
        default:
            throw RedisError(.protocolViolation, "unknown RESP type byte 0x\(String(marker, radix: 16))")
        }
    }

    /// The rest of a line, without its CRLF.
    private func line(_ buffer: inout ByteBuffer) throws -> String {
        let view = buffer.readableBytesView
        guard let cr = view.firstIndex(of: 0x0d) else {
            if view.count > limits.maxLineBytes {
                throw RedisError(.protocolViolation, "line longer than \(limits.maxLineBytes) bytes")
            }
            throw Incomplete()
        }
        let length = cr - view.startIndex
        guard length <= limits.maxLineBytes else {
            throw RedisError(.protocolViolation, "line longer than \(limits.maxLineBytes) bytes")
        }
        guard buffer.readableBytes >= length + 2 else { throw Incomplete() }
        let text = buffer.readString(length: length)!
        guard buffer.readInteger(as: UInt16.self) == 0x0d0a else {
            throw RedisError(.protocolViolation, "CR without LF")
        }
        return text
    }

    private func count(_ buffer: inout ByteBuffer, of what: String) throws -> Int {
        let text = try line(&buffer)
        guard let value = Int(text) else { throw RedisError(.protocolViolation, "\(what) length '\(text)'") }
        guard value <= limits.maxElements || what == "bulk string" else {
            throw RedisError(
                .protocolViolation,
                "\(what) of \(value) elements is over the limit of \(limits.maxElements)"
            )
        }
        return value
    }
}

/// Writes a command as RESP: an array of bulk strings.
public struct RESPCommandEncoder: MessageToByteEncoder {
    public typealias OutboundIn = [ByteBuffer]
    public init() {}

    public func encode(data: [ByteBuffer], out: inout ByteBuffer) throws {
        Self.encode(data, into: &out)
    }

    public static func encode(_ arguments: [ByteBuffer], into out: inout ByteBuffer) {
        out.writeStaticString("*")
        out.writeString(String(arguments.count))
        out.writeStaticString("\r\n")
        for argument in arguments {
            out.writeStaticString("$")
            out.writeString(String(argument.readableBytes))
            out.writeStaticString("\r\n")
            out.writeImmutableBuffer(argument)
            out.writeStaticString("\r\n")
        }
    }
}

import NIOCore
import RedisClient

/// The RESP3 decoder of the cluster's Redis link (a broken or hostile server is a peer too).
///
/// Invariants: no value breaks the decoder's limits (bulk bytes, elements, depth); reads of
/// any size give the same values and the same verdict as one read.
enum RESPTarget {
    static let limits = RESPDecoder.Limits(maxBulkBytes: 1024, maxElements: 64, maxDepth: 4, maxLineBytes: 256)

    static let target = FuzzTarget(name: "resp") { data throws(FuzzFailure) in
        var input = FuzzInput(data)
        let chunkSize = Int(input.byte())
        let bytes = input.rest()

        let (values, failed) = try decode(FuzzInput.chunks(bytes, size: 0))
        let (chunked, chunkedFailed) = try decode(FuzzInput.chunks(bytes, size: chunkSize))
        try FuzzFailure.check(
            chunked.count == values.count && zip(chunked, values).allSatisfy(same),
            "reads of \(chunkSize) bytes give \(chunked.count) values, one read \(values.count) (or other ones)"
        )
        try FuzzFailure.check(
            chunkedFailed == failed,
            "reads of \(chunkSize) bytes \(chunkedFailed ? "fail" : "pass"), one read \(failed ? "fails" : "passes")"
        )
    }

    /// The values decoded from `reads`, each checked, and whether the decoder refused the stream.
    private static func decode(_ reads: [ArraySlice<UInt8>]) throws(FuzzFailure) -> ([RESPValue], Bool) {
        var decoder = RESPDecoder(limits: limits)
        var pending = ByteBuffer()
        var values: [RESPValue] = []
        for read in reads {
            pending.writeBytes(read)
            do {
                while let value = try decoder.decode(buffer: &pending) {
                    try check(value, depth: 0)
                    values.append(value)
                }
            } catch let error as FuzzFailure {
                throw error
            } catch {
                return (values, true)
            }
        }
        return (values, false)
    }

    /// The limits hold for `value` and everything in it.
    private static func check(_ value: RESPValue, depth: Int) throws(FuzzFailure) {
        try FuzzFailure.check(
            depth <= limits.maxDepth,
            "a value nested \(depth) deep passed a limit of \(limits.maxDepth)"
        )
        switch value {
        case .bulkString(let buffer?):
            try FuzzFailure.check(
                buffer.readableBytes <= limits.maxBulkBytes,
                "a bulk string of \(buffer.readableBytes) bytes"
            )
        case .array(let items), .set(let items), .push(let items):
            try FuzzFailure.check(items.count <= limits.maxElements, "an aggregate of \(items.count) elements")
            for item in items { try check(item, depth: depth + 1) }
        case .map(let pairs):
            try FuzzFailure.check(pairs.count <= limits.maxElements, "a map of \(pairs.count) pairs")
            for (key, item) in pairs {
                try check(key, depth: depth + 1)
                try check(item, depth: depth + 1)
            }
        case .simpleString(let text), .bigNumber(let text):
            try FuzzFailure.check(text.utf8.count <= limits.maxLineBytes * 3, "a line of \(text.utf8.count) bytes")
        default:
            break
        }
    }

    /// Equality with NaN equal to itself: a double reply `nan` is the same value twice.
    private static func same(_ a: RESPValue, _ b: RESPValue) -> Bool {
        switch (a, b) {
        case (.double(let x), .double(let y)): return x == y || (x.isNaN && y.isNaN)
        case (.array(let x), .array(let y)), (.set(let x), .set(let y)), (.push(let x), .push(let y)):
            return x.count == y.count && zip(x, y).allSatisfy(same)
        case (.map(let x), .map(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { same($0.0, $1.0) && same($0.1, $1.1) }
        default:
            return a == b
        }
    }
}

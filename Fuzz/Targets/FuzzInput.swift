/// Reads an input from the front: a few option bytes first, then the rest as data. Past the end
/// every read answers zero, so any input, even an empty one, is a valid run.
struct FuzzInput {
    private let bytes: UnsafeRawBufferPointer
    private var position = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// The next byte, or 0 past the end.
    mutating func byte() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    /// Everything not read yet.
    mutating func rest() -> [UInt8] {
        guard position < bytes.count else { return [] }
        defer { position = bytes.count }
        return Array(bytes[position...])
    }

    /// `data` cut into pieces of `size` bytes (0 stands for all at once): how a peer's bytes
    /// arrive in reads of any size, which no parser may care about.
    static func chunks(_ data: [UInt8], size: Int) -> [ArraySlice<UInt8>] {
        guard size > 0, data.count > size else { return [data[...]] }
        return stride(from: 0, to: data.count, by: size).map { data[$0..<min($0 + size, data.count)] }
    }
}

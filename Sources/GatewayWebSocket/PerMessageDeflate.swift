import CompressNIO
import NIOCore

/// RFC 7692 message compression for one session, over CompressNIO's zlib streams.
///
/// zlib contexts are large (about 256 KB to compress and 40 KB to decompress at window 15), so
/// they are created on first use, and — when the negotiated parameters reset the context after
/// every message — released again by `releaseIdleContexts()` once a session goes quiet. An idle
/// connection then holds no zlib memory at all.
final class PerMessageDeflate {
    struct Failure: Error, Equatable {
        enum Reason { case corrupt, tooLarge, zlib }
        let reason: Reason
    }

    let parameters: PerMessageDeflateParameters
    private var inflater: ZlibDecompressor?
    private var deflater: ZlibCompressor?
    private var usedSinceRelease = false
    private static let trailer: [UInt8] = [0x00, 0x00, 0xFF, 0xFF]

    init(parameters: PerMessageDeflateParameters) {
        self.parameters = parameters
    }

    /// Inflates one frame's payload, appending to `message`; `final` adds the RFC 7692 trailer and
    /// ends the message. Fails with `.tooLarge` as soon as `message` would pass `limit` bytes, so
    /// a decompression bomb costs at most about twice `limit` bytes of memory (buffers grow in
    /// powers of two).
    func decompress(_ payload: ByteBuffer, final: Bool, into message: inout ByteBuffer, limit: Int) throws(Failure) {
        usedSinceRelease = true
        let inflater: ZlibDecompressor
        if let existing = self.inflater {
            inflater = existing
        } else {
            do {
                inflater = try ZlibDecompressor(
                    algorithm: .deflate,
                    windowSize: Int32(max(parameters.clientMaxWindowBits, 9))
                )
            } catch {
                throw Failure(reason: .zlib)
            }
            self.inflater = inflater
        }
        var input = payload
        if final { input.writeBytes(Self.trailer) }
        while true {
            if message.readableBytes > limit { throw Failure(reason: .tooLarge) }
            if message.writableBytes < 512 {
                let room = limit + 1 - message.readableBytes
                let grow = min(max(message.capacity, input.readableBytes * 4, 1024), room)
                message.reserveCapacity(minimumWritableBytes: max(grow, 1))
            }
            let inputBefore = input.readableBytes
            let outputBefore = message.readableBytes
            do {
                try inflater.inflate(from: &input, to: &message)
                if input.readableBytes == 0 { break }
                // The stream ended (BFINAL) with input left: nothing more can come of it.
                if input.readableBytes == inputBefore && message.readableBytes == outputBefore {
                    try? inflater.reset()
                    break
                }
            } catch let error as CompressNIOError where error == .bufferOverflow {
                continue
            } catch let error as CompressNIOError where error == .inputBufferOverflow {
                break
            } catch {
                throw Failure(reason: .corrupt)
            }
        }
        if message.readableBytes > limit { throw Failure(reason: .tooLarge) }
        if final && parameters.clientNoContextTakeover {
            do { try inflater.reset() } catch { throw Failure(reason: .zlib) }
        }
    }

    /// Whether a message of this size is worth compressing.
    func shouldCompress(_ byteCount: Int) -> Bool {
        byteCount >= parameters.minMessageBytes
    }

    /// Deflates a whole message into one frame payload (without the trailer).
    func compress(_ message: ByteBuffer, allocator: ByteBufferAllocator) throws(Failure) -> ByteBuffer {
        usedSinceRelease = true
        let deflater: ZlibCompressor
        if let existing = self.deflater {
            deflater = existing
        } else {
            do {
                deflater = try ZlibCompressor(
                    algorithm: .deflate,
                    configuration: ZlibConfiguration(
                        windowSize: Int32(parameters.serverMaxWindowBits),
                        compressionLevel: Int32(parameters.level),
                        memoryLevel: Int32(parameters.memoryLevel)
                    )
                )
            } catch {
                throw Failure(reason: .zlib)
            }
            self.deflater = deflater
        }
        var input = message
        var output = allocator.buffer(capacity: deflater.maxSize(from: input))
        do {
            try deflater.deflate(from: &input, to: &output, flush: .sync)
            if parameters.serverNoContextTakeover { try deflater.reset() }
        } catch {
            throw Failure(reason: .zlib)
        }
        // A sync flush ends with 00 00 FF FF; RFC 7692 §7.2.1 removes it.
        output.moveWriterIndex(to: output.writerIndex - 4)
        return output
    }

    /// Compresses a message that many sessions send, reusing another session's result when this
    /// one's compressor starts each message afresh (its output then depends on nothing else).
    func compress(_ message: WebSocketMessage, allocator: ByteBufferAllocator) throws(Failure) -> ByteBuffer {
        guard let shared = message.sharedCompression, parameters.serverNoContextTakeover else {
            return try compress(message.data, allocator: allocator)
        }
        let key = SharedCompression.Key(
            windowBits: parameters.serverMaxWindowBits,
            level: parameters.level,
            memoryLevel: parameters.memoryLevel
        )
        return try shared.payload(for: key) { () throws(Failure) -> ByteBuffer in
            try compress(message.data, allocator: allocator)
        }
    }

    /// Frees the zlib contexts that hold no state worth keeping (those reset after every message),
    /// unless they were used since the previous call: a busy session keeps them, an idle one
    /// gives them back.
    func releaseIdleContexts(midMessage: Bool) {
        defer { usedSinceRelease = false }
        guard !usedSinceRelease else { return }
        if parameters.serverNoContextTakeover { deflater = nil }
        if parameters.clientNoContextTakeover && !midMessage { inflater = nil }
    }

    /// For tests and the access log: which contexts exist now.
    var allocatedContexts: (inflater: Bool, deflater: Bool) {
        (inflater != nil, deflater != nil)
    }
}

import NIOCore
import NIOWebSocket

/// XOR with the masking key (RFC 6455 §5.3), a word at a time. NIOWebSocket's `unmaskedData`
/// works byte by byte: profiled on the worker route with 4 KiB messages it was 27% of the
/// gateway's CPU, more than TLS.
///
/// The key is the frame's four key bytes as they lie in memory, loaded as one `UInt32`
/// (`WebSocketMaskingKey`'s generic initialiser costs four allocations per frame when it reads
/// them out of a `ByteBuffer`).
enum FrameUnmasking {
    /// `masked` unmasked and appended to `target`, in the same pass as the copy: the payload is
    /// a slice of the bytes NIO read (shared, so it cannot be unmasked where it lies), and a
    /// copy-on-write followed by an XOR pass would read it twice.
    static func appendUnmasked(_ masked: ByteBuffer, mask: UInt32, to target: inout ByteBuffer) {
        let count = masked.readableBytes
        guard count > 0 else { return }
        // Two copies of the key side by side: the same in memory order on any endianness.
        let pattern = UInt64(mask) | UInt64(mask) << 32
        masked.withUnsafeReadableBytes { source in
            _ = target.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { target in
                var index = 0
                while index + 8 <= count {
                    let word = source.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                    target.storeBytes(of: word ^ pattern, toByteOffset: index, as: UInt64.self)
                    index += 8
                }
                withUnsafeBytes(of: mask) { key in
                    while index < count {
                        target[index] = source[index] ^ key[index & 3]
                        index += 1
                    }
                }
                return count
            }
        }
    }

    /// Feeds `masked[offset...]`, unmasked, to `validator`: the key's phase is the payload
    /// offset, so a payload can be checked in pieces as it arrives. Through a small buffer on
    /// the stack: this is the path of frames split across reads, which has nowhere to unmask
    /// into (the bytes stay masked until the frame is whole and copied out).
    static func validateUnmasked(
        _ masked: ByteBuffer,
        from offset: Int,
        mask: UInt32,
        with validator: inout UTF8Validator
    ) -> Bool {
        masked.withUnsafeReadableBytes { source in
            withUnsafeBytes(of: mask) { key in
                withUnsafeTemporaryAllocation(byteCount: 512, alignment: 8) { scratch in
                    var index = offset
                    while index < source.count {
                        let count = min(scratch.count, source.count - index)
                        for position in 0..<count {
                            scratch[position] = source[index + position] ^ key[(index + position) & 3]
                        }
                        guard validator.validate(UnsafeRawBufferPointer(rebasing: scratch[..<count])) else {
                            return false
                        }
                        index += count
                    }
                    return true
                }
            }
        }
    }

    /// `masked` unmasked into a new buffer.
    static func unmaskedCopy(of masked: ByteBuffer, mask: UInt32, allocator: ByteBufferAllocator) -> ByteBuffer {
        guard masked.readableBytes > 0 else { return masked }
        var output = allocator.buffer(capacity: masked.readableBytes)
        appendUnmasked(masked, mask: mask, to: &output)
        return output
    }
}

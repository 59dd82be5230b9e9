import NIOCore
import NIOWebSocket

/// The frames a session sends, encoded into one buffer until the session flushes.
///
/// Instead of NIOWebSocket's `WebSocketFrameEncoder`, which writes a frame as two buffers when
/// the payload has no room for its header in front (an echoed or relayed payload never has):
/// NIOSSL turns each buffer into its own TLS record, so every message cost two records, two
/// seals and 29 bytes of overhead twice. Here everything written between two flushes, headers
/// and payloads up to ``copyLimit``, is one buffer: one `SSL_write`, one record per flush for
/// as long as the bytes fit one.
///
/// The buffer is used again once TLS has taken its bytes (at the flush), so a session that
/// sends one message per read batch allocates nothing for it; ``releaseIdle()`` gives it back.
public struct WebSocketFrameWriter: Sendable {
    /// Payloads up to this size are copied next to their header: with it, a flush of one
    /// message is at most one TLS record (16 KiB). Larger ones are written as they are.
    public static let copyLimit = 16 * 1024 - 14
    /// A buffer grown past this by a burst is not kept after it is written.
    static let retainedCapacity = 32 * 1024

    private var buffer: ByteBuffer?
    /// True once the buffer's bytes were handed to the channel: it is cleared (in place when TLS
    /// is done with it) before the next frame.
    private var handedOff = false

    public init() {}

    /// Whether a buffer is kept (for tests of what an idle session holds).
    public var isHoldingBuffer: Bool { buffer != nil }

    /// Bytes written since the last ``take()``.
    public var hasPending: Bool { !handedOff && (buffer?.readableBytes ?? 0) > 0 }

    /// Appends a frame. A payload over ``copyLimit`` is not copied: it is returned, to be
    /// written after what ``take()`` returns now.
    public mutating func append(
        opcode: WebSocketOpcode,
        fin: Bool = true,
        rsv1: Bool = false,
        payload: ByteBuffer,
        allocator: ByteBufferAllocator
    ) -> ByteBuffer? {
        let length = payload.readableBytes
        let copied = length <= Self.copyLimit
        prepare(bytes: 14 + (copied ? length : 0), allocator: allocator)
        // A server's frames are not masked (RFC 6455 §5.1).
        buffer!.writeInteger((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | UInt8(webSocketOpcode: opcode))
        switch length {
        case ..<126:
            buffer!.writeInteger(UInt8(length))
        case ...0xFFFF:
            buffer!.writeInteger(UInt8(126))
            buffer!.writeInteger(UInt16(length))
        default:
            buffer!.writeInteger(UInt8(127))
            buffer!.writeInteger(UInt64(length))
        }
        guard copied else { return payload }
        buffer!.writeImmutableBuffer(payload)
        return nil
    }

    /// The bytes written since the last call, to write to the channel; nil when there are none.
    public mutating func take() -> ByteBuffer? {
        guard hasPending, let bytes = buffer else { return nil }
        if bytes.capacity > Self.retainedCapacity {
            buffer = nil
        } else {
            handedOff = true
        }
        return bytes
    }

    /// Drops the buffer unless it holds bytes not yet taken: an idle session keeps none.
    public mutating func releaseIdle() {
        guard !hasPending else { return }
        buffer = nil
        handedOff = false
    }

    private mutating func prepare(bytes: Int, allocator: ByteBufferAllocator) {
        if buffer == nil {
            buffer = allocator.buffer(capacity: max(bytes, 256))
            return
        }
        if handedOff {
            // In place when TLS has let go of it, which it has after the flush; otherwise
            // `clear` allocates a fresh buffer and the old one goes with its last reader.
            buffer!.clear()
            handedOff = false
        }
        buffer!.reserveCapacity(minimumWritableBytes: bytes)
    }
}

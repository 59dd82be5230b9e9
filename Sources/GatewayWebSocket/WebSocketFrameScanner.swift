import NIOCore

/// Follows the frame boundaries of a WebSocket byte stream (RFC 6455 §5.2) without decoding it:
/// only headers are read, payloads are skipped by length, nothing is unmasked or copied.
///
/// A proxy route passes bytes through unchanged, yet to drain it must put a close frame into
/// each direction, and a frame may only start where the previous one ended. This scanner is how
/// the pass-through knows where that is, at the cost of reading two to fourteen header bytes
/// per frame.
public struct WebSocketFrameScanner: Sendable {
    /// Bytes of the current header seen so far; 0 between frames.
    private var headerRead = 0
    /// The header's full length, known once its second byte is in.
    private var headerLength = 2
    private var opcode: UInt8 = 0
    private var lengthCode: UInt8 = 0
    private var extendedLength: UInt64 = 0
    /// Payload bytes of the current frame still to come.
    private var remaining: UInt64 = 0

    /// Close frames whose header has passed (the peer has started its closing handshake).
    public private(set) var closeFrames = 0
    /// The stream broke the framing rules this scanner relies on (a 64-bit length with its
    /// top bit set): boundaries are unknown from here on.
    public private(set) var isBroken = false

    public init() {}

    /// Between two frames: a frame written now starts cleanly.
    public var atBoundary: Bool { headerRead == 0 && remaining == 0 && !isBroken }

    /// Follows `bytes`. With `untilBoundary`, stops at the first frame boundary (at once when
    /// already at one) and returns how many bytes lie before it; otherwise consumes them all.
    @discardableResult
    public mutating func scan(_ bytes: UnsafeRawBufferPointer, untilBoundary: Bool = false) -> Int {
        var index = 0
        let count = bytes.count
        if untilBoundary && atBoundary { return 0 }
        while index < count && !isBroken {
            if remaining > 0 {
                let step = Int(min(remaining, UInt64(count - index)))
                index += step
                remaining -= UInt64(step)
                if remaining == 0 && untilBoundary { return index }
                continue
            }
            let byte = bytes[index]
            index += 1
            switch headerRead {
            case 0:
                opcode = byte & 0x0F
                extendedLength = 0
            case 1:
                lengthCode = byte & 0x7F
                let extended = lengthCode == 126 ? 2 : (lengthCode == 127 ? 8 : 0)
                headerLength = 2 + extended + (byte & 0x80 != 0 ? 4 : 0)
            default:
                let extendedBytes = lengthCode == 126 ? 2 : (lengthCode == 127 ? 8 : 0)
                if headerRead < 2 + extendedBytes {
                    extendedLength = extendedLength << 8 | UInt64(byte)
                }
            }
            headerRead += 1
            guard headerRead == headerLength else { continue }
            // The header is complete.
            headerRead = 0
            let length: UInt64
            switch lengthCode {
            case 126, 127: length = extendedLength
            default: length = UInt64(lengthCode)
            }
            if lengthCode == 127 && length >> 63 != 0 {
                isBroken = true
                return index
            }
            if opcode == 0x8 { closeFrames += 1 }
            remaining = length
            if remaining == 0 && untilBoundary { return index }
        }
        return index
    }

    /// The same, over a buffer's readable bytes.
    @discardableResult
    public mutating func scan(_ buffer: ByteBuffer, untilBoundary: Bool = false) -> Int {
        buffer.withUnsafeReadableBytes { scan($0, untilBoundary: untilBoundary) }
    }
}

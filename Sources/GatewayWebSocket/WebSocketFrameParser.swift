import NIOCore
import NIOWebSocket

/// Reads whole WebSocket frames (RFC 6455 §5.2) off the front of a buffer, in place.
///
/// Instead of NIOWebSocket's `ByteToMessageHandler(WebSocketFrameDecoder)`: a frame here is a
/// value (NIO's `WebSocketFrame` allocates a storage object for each one), its payload is a
/// slice of the bytes NIO read, and the session unmasks it in the same pass that copies it out
/// of them. No handler of its own either: the session parses the bytes it is given, one
/// pipeline hop fewer per read.
///
/// Stateless: a frame that has not fully arrived is parsed again, header first, when more
/// bytes come (at most 14 header bytes read twice). The caller keeps the bytes.
public struct WebSocketFrameParser: Sendable {
    /// One frame, as it came: the payload is still masked when `maskKey` is set.
    public struct Frame: Sendable {
        public var fin: Bool
        public var rsv1: Bool
        public var rsv2: Bool
        public var rsv3: Bool
        public var opcode: WebSocketOpcode
        /// The masking key's four bytes in memory order (nil for an unmasked frame).
        public var mask: UInt32?
        public var payload: ByteBuffer

        public var isMasked: Bool { mask != nil }

        /// The masking key as NIOWebSocket has it (for tests and tools: it allocates).
        public var maskKey: WebSocketMaskingKey? {
            mask.map { mask in withUnsafeBytes(of: mask) { WebSocketMaskingKey(Array($0))! } }
        }

        /// The payload unmasked, in a buffer of its own: copied and unmasked in one pass, eight
        /// bytes at a time.
        public func unmaskedPayload(allocator: ByteBufferAllocator) -> ByteBuffer {
            guard let mask else { return payload }
            return FrameUnmasking.unmaskedCopy(of: payload, mask: mask, allocator: allocator)
        }

        /// The payload unmasked and appended to `target`, in one pass.
        public func appendUnmaskedPayload(to target: inout ByteBuffer) {
            guard let mask else {
                target.writeImmutableBuffer(payload)
                return
            }
            FrameUnmasking.appendUnmasked(payload, mask: mask, to: &target)
        }
    }

    /// Why the byte stream cannot be read as frames any more.
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public enum Code: Sendable, Equatable {
            /// A frame longer than the limit (1009).
            case frameTooLarge
            /// A control frame with FIN clear (1002).
            case fragmentedControlFrame
            /// A control frame of more than 125 bytes (1002).
            case controlFrameTooLong
            /// A 64-bit length with its top bit set (1002).
            case invalidLength
        }
        public var code: Code
        public var description: String {
            switch code {
            case .frameTooLarge: "frame larger than the message limit"
            case .fragmentedControlFrame: "fragmented control frame"
            case .controlFrameTooLong: "control frame longer than 125 bytes"
            case .invalidLength: "frame length with the most significant bit set"
            }
        }
        /// The close code RFC 6455 gives this failure.
        public var closeCode: WebSocketErrorCode {
            code == .frameTooLarge ? .messageTooLarge : .protocolError
        }
    }

    public let maxFrameBytes: Int

    public init(maxFrameBytes: Int) {
        self.maxFrameBytes = maxFrameBytes
    }

    /// The header of the frame at the front of `buffer`: its length and the total bytes the
    /// frame takes; nil while fewer bytes than the header are in.
    private func header(
        _ buffer: ByteBuffer
    ) throws(Failure) -> (first: UInt8, headerBytes: Int, payloadBytes: Int, masked: Bool)? {
        let available = buffer.readableBytes
        guard available >= 2,
            let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
            let second = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self)
        else { return nil }
        let masked = second & 0x80 != 0
        var headerBytes = 2 + (masked ? 4 : 0)
        let payloadBytes: Int
        switch second & 0x7F {
        case 126:
            headerBytes += 2
            guard available >= headerBytes,
                let length = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt16.self)
            else { return nil }
            payloadBytes = Int(length)
        case 127:
            headerBytes += 8
            guard available >= headerBytes,
                let length = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt64.self)
            else { return nil }
            guard length >> 63 == 0 else { throw Failure(code: .invalidLength) }
            guard length <= UInt64(maxFrameBytes) else { throw Failure(code: .frameTooLarge) }
            payloadBytes = Int(length)
        case let length:
            guard available >= headerBytes else { return nil }
            payloadBytes = Int(length)
        }
        guard payloadBytes <= maxFrameBytes else { throw Failure(code: .frameTooLarge) }
        if first & 0x08 != 0 {
            guard first & 0x80 != 0 else { throw Failure(code: .fragmentedControlFrame) }
            guard payloadBytes <= 125 else { throw Failure(code: .controlFrameTooLong) }
        }
        return (first, headerBytes, payloadBytes, masked)
    }

    /// The whole frame's length in bytes (header and payload) once its header is in: what a
    /// caller keeping a partial frame reserves.
    public func frameBytes(_ buffer: ByteBuffer) throws(Failure) -> Int? {
        guard let header = try header(buffer) else { return nil }
        return header.headerBytes + header.payloadBytes
    }

    /// The frame at the front of `buffer` while only part of its payload is in: its header, and
    /// as `payload` the bytes of the payload that have arrived (still masked). Nil while the
    /// header is not all in, and once the whole frame is (``parse(_:)`` takes it then). Consumes
    /// nothing: the session looks into a text frame as it arrives, to fail invalid UTF-8 at once.
    public func arrivingFrame(_ buffer: ByteBuffer) throws(Failure) -> Frame? {
        guard let header = try header(buffer),
            buffer.readableBytes < header.headerBytes + header.payloadBytes
        else { return nil }
        return frame(header, in: buffer, payloadBytes: buffer.readableBytes - header.headerBytes)
    }

    /// The frame at the front of `buffer`, consumed from it; nil, consuming nothing, while only
    /// part of it is in. Throws for a frame that breaks the framing rules or the size limit
    /// (as soon as its header shows it).
    public func parse(_ buffer: inout ByteBuffer) throws(Failure) -> Frame? {
        guard let header = try header(buffer),
            buffer.readableBytes >= header.headerBytes + header.payloadBytes
        else { return nil }
        let frame = frame(header, in: buffer, payloadBytes: header.payloadBytes)
        buffer.moveReaderIndex(forwardBy: header.headerBytes + header.payloadBytes)
        return frame
    }

    /// The frame whose `header` starts `buffer`, with the first `payloadBytes` of its payload.
    private func frame(
        _ header: (first: UInt8, headerBytes: Int, payloadBytes: Int, masked: Bool),
        in buffer: ByteBuffer,
        payloadBytes: Int
    ) -> Frame {
        let start = buffer.readerIndex
        var mask: UInt32?
        if header.masked {
            mask = buffer.getInteger(at: start + header.headerBytes - 4, endianness: .host, as: UInt32.self)
        }
        let payload = buffer.getSlice(at: start + header.headerBytes, length: payloadBytes)!
        let first = header.first
        return Frame(
            fin: first & 0x80 != 0,
            rsv1: first & 0x40 != 0,
            rsv2: first & 0x20 != 0,
            rsv3: first & 0x10 != 0,
            opcode: WebSocketOpcode(encodedWebSocketOpcode: first & 0x0F)!,
            mask: mask,
            payload: payload
        )
    }
}

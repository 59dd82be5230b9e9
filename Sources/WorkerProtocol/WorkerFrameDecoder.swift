import NIOCore

/// Splits a link's byte stream into frames. A length above `maxFrameBytes` is refused before any
/// of it is buffered, so a peer cannot make the other side allocate what it announces.
public struct WorkerFrameDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = WorkerFrame

    public let maxFrameBytes: Int

    public init(maxFrameBytes: Int) {
        self.maxFrameBytes = maxFrameBytes
    }

    public mutating func decode(buffer: inout ByteBuffer) throws(WorkerProtocolError) -> WorkerFrame? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        guard length >= 1 else { throw WorkerProtocolError(.truncatedFrame, "a frame of length 0 has no type") }
        guard Int(length) <= maxFrameBytes else {
            throw WorkerProtocolError(.frameTooLarge, "frame of \(length) bytes is over the limit of \(maxFrameBytes)")
        }
        guard buffer.readableBytes >= WorkerFrameCodec.lengthFieldBytes + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: WorkerFrameCodec.lengthFieldBytes)
        let body = buffer.readSlice(length: Int(length))!
        return try WorkerFrameCodec.decode(body: body)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws(WorkerProtocolError) -> WorkerFrame?
    {
        if let frame = try decode(buffer: &buffer) { return frame }
        if buffer.readableBytes > 0 {
            throw WorkerProtocolError(
                .truncatedFrame,
                "link closed in the middle of a frame (\(buffer.readableBytes) bytes left)"
            )
        }
        return nil
    }
}

import NIOCore

/// Splits what a link reads into frames, for the handler at the end of a link's pipeline.
///
/// It does the job of `ByteToMessageHandler(WorkerFrameDecoder)` without passing each frame
/// through the pipeline as a boxed `NIOAny`: the link handler reads `ByteBuffer`s, appends them
/// here and takes frames out in a loop. Payloads are slices of the bytes read, never copies.
public struct WorkerFrameReader {
    private var decoder: WorkerFrameDecoder
    /// Bytes read and not yet decoded; nil when everything read was a whole frame.
    private var buffered: ByteBuffer?

    public init(maxFrameBytes: Int) {
        self.decoder = WorkerFrameDecoder(maxFrameBytes: maxFrameBytes)
    }

    /// Bytes that are not a whole frame yet.
    public var bufferedBytes: Int { buffered?.readableBytes ?? 0 }

    public mutating func append(_ bytes: ByteBuffer) {
        if buffered == nil {
            buffered = bytes
        } else {
            buffered!.writeImmutableBuffer(bytes)
        }
    }

    /// The next whole frame, or nil until more bytes come. A frame that breaks the protocol
    /// throws, and the link must end: what follows it cannot be trusted to be framed.
    public mutating func next() throws(WorkerProtocolError) -> WorkerFrame? {
        guard buffered != nil else { return nil }
        let frame = try decoder.decode(buffer: &buffered!)
        if buffered!.readableBytes == 0 {
            buffered = nil
        } else if frame == nil, buffered!.readerIndex > 0 {
            // Keep only the partial frame, so the next read is not appended behind what was
            // already decoded.
            buffered!.discardReadBytes()
        }
        return frame
    }

    /// The link ended: bytes left over are a frame cut short.
    public func finish() throws(WorkerProtocolError) {
        if bufferedBytes > 0 {
            throw WorkerProtocolError(
                .truncatedFrame,
                "link closed in the middle of a frame (\(bufferedBytes) bytes left)"
            )
        }
    }
}

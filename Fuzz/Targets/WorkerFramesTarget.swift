import NIOCore
import WorkerProtocol

/// The worker protocol's frames, as the gateway reads a worker's link and as the worker library
/// reads the gateway's (one codec, every frame type both ways).
///
/// Invariants: no frame over the link's limit is decoded; every decoded frame re-encodes to the
/// exact bytes it came from, so nothing a peer sent is half-understood; reads of any size give
/// the same frames and the same error as one read.
enum WorkerFramesTarget {
    static let maxFrameBytes = 4096

    static let target = FuzzTarget(name: "worker-frames") { data throws(FuzzFailure) in
        var input = FuzzInput(data)
        let chunkSize = Int(input.byte())
        let bytes = input.rest()

        // All at once through the decoder, comparing each frame with its own bytes.
        var buffer = ByteBuffer(bytes: bytes)
        var decoder = WorkerFrameDecoder(maxFrameBytes: maxFrameBytes)
        var frames: [WorkerFrame] = []
        var failure: WorkerProtocolError?
        while true {
            let start = buffer.readerIndex
            let before = buffer
            do {
                guard let frame = try decoder.decode(buffer: &buffer) else { break }
                let consumed = before.getSlice(at: start, length: buffer.readerIndex - start)!
                try FuzzFailure.check(
                    consumed.readableBytes <= maxFrameBytes + WorkerFrameCodec.lengthFieldBytes,
                    "a frame of \(consumed.readableBytes) bytes passed a limit of \(maxFrameBytes)"
                )
                let encoded = WorkerFrameCodec.encode(frame)
                try FuzzFailure.check(
                    encoded == consumed,
                    "\(frame) re-encodes to \(Array(encoded.readableBytesView)), it came as \(Array(consumed.readableBytesView))"
                )
                try FuzzFailure.check(
                    (try? WorkerFrameCodec.decode(body: encoded.getSlice(at: 4, length: encoded.readableBytes - 4)!))
                        == frame,
                    "\(frame) does not decode from its own encoding"
                )
                frames.append(frame)
            } catch let error as FuzzFailure {
                throw error
            } catch {
                failure = error as? WorkerProtocolError
                break
            }
        }

        // The same bytes in reads of `chunkSize`, through the link's reader.
        var reader = WorkerFrameReader(maxFrameBytes: maxFrameBytes)
        var chunkedFrames: [WorkerFrame] = []
        var chunkedFailure: WorkerProtocolError?
        reading: for chunk in FuzzInput.chunks(bytes, size: chunkSize) {
            reader.append(ByteBuffer(bytes: chunk))
            do throws(WorkerProtocolError) {
                while let frame = try reader.next() { chunkedFrames.append(frame) }
            } catch {
                chunkedFailure = error
                break reading
            }
            try FuzzFailure.check(
                reader.bufferedBytes <= maxFrameBytes + WorkerFrameCodec.lengthFieldBytes + chunk.count,
                "the reader holds \(reader.bufferedBytes) bytes with a limit of \(maxFrameBytes)"
            )
        }
        try FuzzFailure.check(chunkedFrames == frames, "reads of \(chunkSize) bytes give other frames than one read")
        try FuzzFailure.check(
            chunkedFailure?.code == failure?.code,
            "reads of \(chunkSize) bytes fail with \(String(describing: chunkedFailure)), one read with \(String(describing: failure))"
        )
    }
}

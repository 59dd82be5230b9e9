import GatewayWebSocket
import NIOCore
import NIOWebSocket

/// The WebSocket frame parser, the unmasking pass and the frame writer.
///
/// Invariants: no frame over the limit and no malformed control frame is returned; the
/// unmasked payload is the bytes XORed with the key (the word-at-a-time unmasking against the
/// byte-by-byte definition); a frame re-encoded by the writer parses back to the same frame,
/// and to the very same bytes when it came unmasked in its shortest length form; a frame seen
/// while arriving agrees with the whole frame; the parser's verdict on a prefix never
/// contradicts the whole.
enum WebSocketFramesTarget {
    static let maxFrameBytes = 2048

    static let target = FuzzTarget(name: "websocket-frames") { data throws(FuzzFailure) in
        let parser = WebSocketFrameParser(maxFrameBytes: maxFrameBytes)
        var buffer = ByteBuffer(bytes: UnsafeRawBufferPointer(data))
        let allocator = ByteBufferAllocator()
        while true {
            let start = buffer.readerIndex
            let before = buffer
            let expected: Int?
            let frame: WebSocketFrameParser.Frame?
            do {
                expected = try parser.frameBytes(buffer)
                frame = try parser.parse(&buffer)
            } catch {
                // A failure is final: the header alone decides it, so more bytes behind it
                // cannot change the verdict.
                var longer = before
                longer.writeBytes([0, 0, 0, 0])
                try FuzzFailure.check(
                    (try? parser.frameBytes(longer)) == nil && (try? parser.arrivingFrame(longer)) == nil,
                    "a frame refused with \(error) is not refused once more bytes follow it"
                )
                break
            }
            guard let frame else {
                try FuzzFailure.check(
                    expected == nil || expected! > buffer.readableBytes,
                    "a frame of \(expected ?? -1) bytes is all in (\(buffer.readableBytes)) but was not returned"
                )
                break
            }
            let consumed = buffer.readerIndex - start
            try FuzzFailure.check(expected == consumed, "frameBytes said \(expected ?? -1), the frame took \(consumed)")
            try FuzzFailure.check(
                frame.payload.readableBytes <= maxFrameBytes,
                "a payload of \(frame.payload.readableBytes) bytes"
            )
            if frame.opcode.isControlOpcode {
                try FuzzFailure.check(
                    frame.fin && frame.payload.readableBytes <= 125,
                    "a control frame that breaks §5.5"
                )
            }

            // Unmasking against its definition.
            var unmasked = ByteBuffer()
            frame.appendUnmaskedPayload(to: &unmasked)
            let raw = Array(frame.payload.readableBytesView)
            let reference: [UInt8]
            if let key = frame.maskKey {
                reference = raw.enumerated().map { $0.element ^ key[$0.offset % 4] }
            } else {
                reference = raw
            }
            try FuzzFailure.check(
                Array(unmasked.readableBytesView) == reference,
                "unmasking differs from XOR with the key"
            )
            try FuzzFailure.check(
                frame.unmaskedPayload(allocator: allocator) == unmasked,
                "the two unmasking paths differ"
            )

            // The frame while it arrives: the same header, a prefix of the payload.
            let original = before.getSlice(at: start, length: consumed)!
            for cut in Set([consumed - 1, consumed / 2, consumed - raw.count / 3]) where cut > 1 && cut < consumed {
                let part = original.getSlice(at: original.readerIndex, length: cut)!
                guard let arriving = try? parser.arrivingFrame(part) else { continue }
                try FuzzFailure.check(
                    arriving.fin == frame.fin && arriving.opcode == frame.opcode && arriving.mask == frame.mask
                        && Array(arriving.payload.readableBytesView)
                            == Array(raw.prefix(arriving.payload.readableBytes)),
                    "the first \(cut) bytes show another frame than the whole"
                )
            }

            // Written back by the server's writer.
            var writer = WebSocketFrameWriter()
            let separate = writer.append(
                opcode: frame.opcode,
                fin: frame.fin,
                rsv1: frame.rsv1,
                payload: unmasked,
                allocator: allocator
            )
            var written = writer.take() ?? ByteBuffer()
            if let separate { written.writeImmutableBuffer(separate) }
            let writtenBytes = written
            guard let again = try? parser.parse(&written) else {
                throw FuzzFailure("the writer's frame for \(frame.opcode) of \(raw.count) bytes does not parse")
            }
            try FuzzFailure.check(
                again.fin == frame.fin && again.rsv1 == frame.rsv1 && again.opcode == frame.opcode && again.mask == nil
                    && again.payload == unmasked && written.readableBytes == 0,
                "the writer's frame parses to another frame"
            )
            let shortest = raw.count < 126 ? 2 : raw.count <= 0xFFFF ? 4 : 10
            if frame.mask == nil, !frame.rsv2, !frame.rsv3, consumed == shortest + raw.count {
                try FuzzFailure.check(writtenBytes == original, "an unmasked frame re-encodes to other bytes")
            }
        }
    }
}

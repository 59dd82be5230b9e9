import NIOCore

/// Closes an HTTP/2 connection once the gateway has told the client it is broken.
///
/// On a connection error (a malformed frame, a flood that NIO's validator stops) NIO's HTTP/2
/// handler writes a GOAWAY with the error's code and reports the error, but leaves the
/// connection open: what the client sends afterwards is read and held. RFC 9113 §5.4.1 says the
/// endpoint MUST close the TCP connection after that GOAWAY. This handler sits between TLS and
/// the HTTP/2 handler and reads the frame headers of what the gateway writes: after a GOAWAY
/// whose error code is not NO_ERROR (a drain's and an idle connection's GOAWAY are NO_ERROR) it
/// stops reading and closes once the GOAWAY is written — or after `grace` at the latest, should
/// the client not take it.
final class HTTP2ErrorCloser: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    /// How long a client that does not read gets to take the GOAWAY before the connection is
    /// closed anyway.
    static let grace = TimeAmount.seconds(2)

    /// Where the scan of the written frames stands.
    private enum Scan {
        /// Collecting a frame's 9-byte header.
        case header([UInt8])
        /// Skipping the rest of a payload.
        case payload(remaining: Int)
        /// In a GOAWAY's payload: its first 8 bytes hold the last stream id and the error code.
        case goAway(collected: [UInt8], remaining: Int)
        /// A GOAWAY for an error was written: nothing more is looked at.
        case closing
    }

    private var scan = Scan.header([])

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .byteBuffer(let buffer) = unwrapOutboundIn(data), !isClosing else {
            return context.write(data, promise: promise)
        }
        consume(buffer.readableBytesView)
        guard isClosing else { return context.write(data, promise: promise) }
        // This write carries the GOAWAY: read nothing more, close once it is out.
        context.channel.setOption(.autoRead, value: false).whenFailure { _ in }
        let written = promise ?? context.eventLoop.makePromise()
        context.write(data, promise: written)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let deadline = context.eventLoop.scheduleTask(in: Self.grace) { loopBound.value.close(promise: nil) }
        written.futureResult.whenComplete { _ in
            deadline.cancel()
            loopBound.value.close(promise: nil)
        }
    }

    private var isClosing: Bool {
        if case .closing = scan { return true }
        return false
    }

    /// Frame headers byte by byte, payloads skipped whole: a DATA frame costs one step.
    private func consume(_ bytes: ByteBufferView) {
        var index = bytes.startIndex
        while index < bytes.endIndex, !isClosing {
            if case .payload(let remaining) = scan {
                let taken = min(remaining, bytes.endIndex - index)
                index += taken
                scan = taken == remaining ? .header([]) : .payload(remaining: remaining - taken)
            } else {
                advance(bytes[index])
                index += 1
            }
        }
    }

    private func advance(_ byte: UInt8) {
        switch scan {
        case .header(var bytes):
            bytes.append(byte)
            guard bytes.count == 9 else {
                scan = .header(bytes)
                return
            }
            let length = Int(bytes[0]) << 16 | Int(bytes[1]) << 8 | Int(bytes[2])
            // GOAWAY is frame type 7 (RFC 9113 §6.8); its payload is at least 8 bytes.
            if bytes[3] == 0x7 && length >= 8 {
                scan = .goAway(collected: [], remaining: length)
            } else {
                scan = length == 0 ? .header([]) : .payload(remaining: length)
            }
        case .payload(let remaining):
            scan = remaining == 1 ? .header([]) : .payload(remaining: remaining - 1)
        case .goAway(var collected, let remaining):
            if collected.count < 8 { collected.append(byte) }
            if collected.count == 8 {
                let code =
                    UInt32(collected[4]) << 24 | UInt32(collected[5]) << 16 | UInt32(collected[6]) << 8
                    | UInt32(collected[7])
                if code != 0 {
                    scan = .closing
                    return
                }
            }
            scan = remaining == 1 ? .header([]) : .goAway(collected: collected, remaining: remaining - 1)
        case .closing:
            break
        }
    }
}

import GatewayCore
import GatewayMetrics
import NIOCore
import NIOWebSocket

/// Messages out of frames: reassembly, inflation, the UTF-8 check, the hand-off to the
/// application, and the client's close.
extension WebSocketSessionHandler {
    func startMessage(kind: WebSocketMessage.Kind, compressed: Bool, frame: Frame) {
        utf8.reset()
        if compressed {
            partial = context!.channel.allocator.buffer(capacity: 0)
            appendCompressed(frame, kind: kind)
        } else {
            let length = frame.payload.readableBytes
            guard length <= configuration.limits.maxMessageBytes else {
                return fail(.messageTooLarge, "message larger than \(configuration.limits.maxMessageBytes) bytes")
            }
            var data = messageBuffer(capacity: length)
            frame.appendUnmaskedPayload(to: &data)
            if kind == .text && !utf8.validate(data) { return fail(.dataInconsistentWithMessage, "invalid UTF-8") }
            partial = data
        }
        if frame.fin { finishMessage(kind: kind) }
    }

    func continueMessage(compressed: Bool, frame: Frame) {
        guard var data = partial, let kind = state.assembling?.kind else { return }
        if compressed {
            appendCompressed(frame, kind: kind)
        } else {
            guard data.readableBytes + frame.payload.readableBytes <= configuration.limits.maxMessageBytes else {
                return fail(.messageTooLarge, "message larger than \(configuration.limits.maxMessageBytes) bytes")
            }
            partial = nil  // keep the buffer uniquely referenced while appending
            let start = data.writerIndex - data.readerIndex
            frame.appendUnmaskedPayload(to: &data)
            if kind == .text {
                let valid = data.withUnsafeReadableBytes { bytes in
                    utf8.validate(UnsafeRawBufferPointer(rebasing: bytes[start...]))
                }
                if !valid { return fail(.dataInconsistentWithMessage, "invalid UTF-8") }
            }
            partial = data
        }
        if frame.fin, partial != nil { finishMessage(kind: kind) }
    }

    func appendCompressed(_ frame: Frame, kind: WebSocketMessage.Kind) {
        guard var data = partial, let deflate else { return }
        partial = nil
        let before = data.writerIndex
        do {
            try deflate.decompress(
                unmasked(frame),
                final: frame.fin,
                into: &data,
                limit: configuration.limits.maxMessageBytes
            )
        } catch {
            switch error.reason {
            case .tooLarge:
                return fail(.messageTooLarge, "message larger than \(configuration.limits.maxMessageBytes) bytes")
            case .corrupt: return fail(.dataInconsistentWithMessage, "invalid compressed data")
            case .zlib: return fail(.unexpectedServerError, "compression failure")
            }
        }
        if let wait = state.inflated(bytes: data.writerIndex - before, now: .now()) {
            inflateTimer = schedule(.inflate, in: wait)
        }
        if kind == .text {
            let added = data.getSlice(at: before, length: data.writerIndex - before)!
            if !utf8.validate(added) { return fail(.dataInconsistentWithMessage, "invalid UTF-8") }
        }
        partial = data
    }

    func finishMessage(kind: WebSocketMessage.Kind) {
        guard let data = partial else { return }
        partial = nil
        if kind == .text && !utf8.isAtBoundary { return fail(.dataInconsistentWithMessage, "invalid UTF-8") }
        guard state.messageCompleted(bytes: data.readableBytes, now: .now()) else { return rateLimited() }
        configuration.metrics?.received(bytes: data.readableBytes)
        application.session(self, didReceive: WebSocketMessage(kind: kind, data: data))
        // Kept for the next message: used again if the application let go of it (an echo,
        // a worker link, which copy it out), dropped at the next keepalive tick.
        if data.capacity <= WebSocketFrameWriter.retainedCapacity { spare = data }
    }

    /// A buffer for a message's bytes: the last message's when nobody else holds it any more.
    func messageBuffer(capacity: Int) -> ByteBuffer {
        if var buffer = spare {
            spare = nil
            if buffer.capacity >= capacity, buffer.modifyIfUniquelyOwned({ $0.clear() }) != nil { return buffer }
        }
        return context!.channel.allocator.buffer(capacity: capacity)
    }

    func receivedClose(_ frame: Frame, context: ChannelHandlerContext) {
        var payload = unmasked(frame)
        var code: WebSocketErrorCode?
        var reason: String?
        if payload.readableBytes == 1 { return fail(.protocolError, "close payload of one byte") }
        if let value = payload.readInteger(as: UInt16.self) {
            guard WebSocketErrorCode.isValidOnWire(value) else {
                return fail(.protocolError, "invalid close code \(value)")
            }
            guard UTF8Validator.isValid(payload) else {
                return fail(.dataInconsistentWithMessage, "close reason is not UTF-8")
            }
            code = WebSocketErrorCode(code: value)
            reason = String(buffer: payload)
        }
        state.closeFrameArrived(code: code, reason: reason)
        partial = nil
        discardBacklog()
        // Echo the code (RFC 6455 §5.5.1), then the server closes TCP first (§7.1.1).
        var reply = context.channel.allocator.buffer(capacity: 2)
        if let code { reply.write(webSocketErrorCode: code) }
        writeFrame(.connectionClose, payload: reply, context: context)
        let written = context.eventLoop.makePromise(of: Void.self)
        addOutputPromise(written)
        flushOutput(context: context)
        written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    func closeCode(of frame: Frame) -> WebSocketErrorCode? {
        var payload = unmasked(frame)
        return payload.readInteger(as: UInt16.self).map(WebSocketErrorCode.init(code:))
    }
}

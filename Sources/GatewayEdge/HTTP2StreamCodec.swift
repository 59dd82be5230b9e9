import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2

/// One HTTP/2 stream as the HTTP/1.1 handler sees a connection: the request's HEADERS and DATA
/// frames become `HTTPServerRequestPart`s, the answer's parts become frames. After an extended
/// CONNECT (RFC 8441) is accepted, `HTTP2Tunnel` takes its place.
///
/// NIO's `HTTP2FramePayloadToHTTP1ServerCodec` drops the `:protocol` pseudo-header and expects a
/// CONNECT to carry a body, so this codec is the gateway's own: an extended CONNECT becomes a
/// head with method CONNECT, version 2.0 and the pseudo-header kept as a `:protocol` field (no
/// HTTP/1.1 request can carry a field name with a colon, so the mark cannot be forged there),
/// followed at once by `.end`: what the client sends after it is the tunnel's.
final class HTTP2StreamCodec: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTP2Frame.FramePayload

    /// DATA a client sends on an extended CONNECT before its answer is kept, up to this much
    /// (one initial flow-control window); more refuses the stream.
    static let earlyTunnelBytes = 65_535

    private enum Phase {
        /// Reading the request (or answering it).
        case request
        /// An extended CONNECT's head went up; the answer decides.
        case awaitingTunnel
    }

    /// How long a stream has to complete its request (`http.header_timeout`): the slowloris
    /// guard of HTTP/1.1's request guard, per stream.
    private let requestTimeout: TimeAmount
    private var timer: Scheduled<Void>?
    private var phase = Phase.request
    /// What an extended CONNECT's client sent before its answer.
    private var early: ByteBuffer?
    /// The client ended its side (END_STREAM) before the tunnel began.
    private var remoteEnded = false

    /// The field under which an extended CONNECT's `:protocol` reaches the HTTP handler.
    static let protocolField = ":protocol"

    init(requestTimeout: TimeAmount = .seconds(10)) {
        self.requestTimeout = requestTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: requestTimeout) {
            let (codec, context) = loopBound.value
            codec.answerAndEnd(context: context, status: .requestTimeout, "request not complete in time\n")
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    /// The request is complete: the HTTP handler answers it from here.
    private func fireEnd(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelRead(wrapInboundOut(.end(nil)))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(let headers):
            if headers.endStream { remoteEnded = true }
            guard phase == .request else { return }
            readHead(headers, context: context)
        case .data(let payload):
            guard case .byteBuffer(var bytes) = payload.data else { return }
            if payload.endStream { remoteEnded = true }
            switch phase {
            case .request:
                if bytes.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(.body(bytes))) }
                if payload.endStream { fireEnd(context: context) }
            case .awaitingTunnel:
                if early == nil { early = bytes } else { early!.writeBuffer(&bytes) }
                if early!.readableBytes > Self.earlyTunnelBytes { context.close(promise: nil) }
            }
        default:
            // RST_STREAM closes the stream channel itself; nothing else reaches a stream.
            break
        }
    }

    private func readHead(_ frame: HTTP2Frame.FramePayload.Headers, context: ChannelHandlerContext) {
        let headers = frame.headers
        let method = headers.first(name: ":method") ?? ""
        let extendedProtocol = headers.first(name: ":protocol")
        guard let path = headers.first(name: ":path") else {
            // A classic CONNECT (no :path, no :protocol) asks for a TCP tunnel: not offered.
            return answerAndEnd(
                context: context,
                status: .notImplemented,
                "CONNECT without :protocol is not supported\n"
            )
        }
        var fields: [(String, String)] = []
        fields.reserveCapacity(headers.count)
        if !headers.contains(name: "host"), let authority = headers.first(name: ":authority") {
            fields.append(("host", authority))
        }
        for (name, value, _) in headers where !name.hasPrefix(":") {
            fields.append((name, value))
        }
        if let extendedProtocol { fields.append((Self.protocolField, extendedProtocol)) }
        let head = HTTPRequestHead(
            version: .http2,
            method: HTTPMethod(rawValue: method),
            uri: path,
            headers: HTTPHeaders(fields)
        )
        context.fireChannelRead(wrapInboundOut(.head(head)))
        if extendedProtocol != nil {
            // The rest of the stream is the tunnel's; the request itself is complete.
            phase = .awaitingTunnel
            fireEnd(context: context)
        } else if frame.endStream {
            fireEnd(context: context)
        }
    }

    /// Answers a request this codec cannot pass on, and ends the stream.
    private func answerAndEnd(context: ChannelHandlerContext, status: HTTPResponseStatus, _ body: String) {
        let head = HTTPResponseHead(
            version: .http2,
            status: status,
            headers: ["content-type": "text/plain; charset=utf-8", "content-length": String(body.utf8.count)]
        )
        context.write(wrapOutboundOut(Self.headers(head)), promise: nil)
        let bytes = context.channel.allocator.buffer(string: body)
        context.writeAndFlush(wrapOutboundOut(.data(.init(data: .byteBuffer(bytes), endStream: true))), promise: nil)
    }

    /// The answer (2xx) was sent and the stream is now the WebSocket's: a tunnel framer takes
    /// this codec's place, holding what the client sent early until `HTTP2Tunnel.open` (once
    /// the session is above it: a session may write from the moment it is added, and those
    /// writes must find the tunnel, not this codec).
    func beginTunnel(context: ChannelHandlerContext) throws -> HTTP2Tunnel {
        let tunnel = HTTP2Tunnel(early: early, remoteEnded: remoteEnded)
        early = nil
        let pipeline = context.pipeline.syncOperations
        try pipeline.addHandler(tunnel, position: .after(self))
        pipeline.removeHandler(context: context, promise: nil)
        return tunnel
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head):
            context.write(wrapOutboundOut(Self.headers(head)), promise: promise)
        case .body(let body):
            context.write(wrapOutboundOut(.data(.init(data: body))), promise: promise)
        case .end(let trailers):
            if let trailers {
                let block = HPACKHeaders(httpHeaders: trailers, normalizeHTTPHeaders: true)
                context.write(wrapOutboundOut(.headers(.init(headers: block, endStream: true))), promise: promise)
            } else {
                let empty = context.channel.allocator.buffer(capacity: 0)
                context.write(
                    wrapOutboundOut(.data(.init(data: .byteBuffer(empty), endStream: true))),
                    promise: promise
                )
            }
        }
    }

    /// An HTTP/1 response head as an HTTP/2 HEADERS block: `:status` first, names lower-cased,
    /// connection-specific fields (Connection, Keep-Alive, Transfer-Encoding, Upgrade) left out.
    static func headers(_ head: HTTPResponseHead) -> HTTP2Frame.FramePayload {
        var block = HPACKHeaders([(":status", String(head.status.code))])
        for (name, value, indexing) in HPACKHeaders(httpHeaders: head.headers, normalizeHTTPHeaders: true) {
            block.add(name: name, value: value, indexing: indexing)
        }
        return .headers(.init(headers: block))
    }
}

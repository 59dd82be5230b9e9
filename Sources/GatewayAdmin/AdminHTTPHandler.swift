import NIOCore
import NIOHTTP1

/// Reads one admin request at a time (head, body up to `AdminAPI.maxBodyBytes`), hands it to
/// the API and writes its JSON answer; keep-alive as the client asks.
///
/// Nothing is read that no one has been allowed to send: the token is checked on the head, and a
/// request without it is answered 401 and its connection closed before its body is read. A
/// request must arrive whole within `requestTimeout` of the connection's opening or its previous
/// answer: one whose head came and body did not gets 408, an idle connection is closed. A client
/// cannot hold the listener's memory or its descriptors by sending slowly or not at all.
final class AdminHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// How long a request (head and body) may take to arrive, and an idle connection to send one.
    static let requestTimeout = TimeAmount.seconds(10)

    private let api: AdminAPI
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    /// The body passed the limit: the rest of the request is ignored and the answer is 413.
    private var tooLarge = false
    /// The connection is answered and closing: what else it sends is ignored.
    private var done = false
    private var timer: Scheduled<Void>?

    init(api: AdminAPI) {
        self.api = api
    }

    func channelActive(context: ChannelHandlerContext) {
        startTimer(context: context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            if let refusal = api.refusal(of: head) {
                return finish(refusal, context: context)
            }
            self.head = head
            body.clear()
            tooLarge =
                head.headers.first(name: "content-length").flatMap(Int.init).map { $0 > AdminAPI.maxBodyBytes } ?? false
        case .body(var chunk):
            guard !tooLarge else { return }
            if body.readableBytes + chunk.readableBytes > AdminAPI.maxBodyBytes {
                tooLarge = true
                body.clear()
            } else {
                body.writeBuffer(&chunk)
            }
        case .end:
            guard let head else { return }
            self.head = nil
            timer?.cancel()
            if tooLarge {
                let error = AdminError(
                    .payloadTooLarge,
                    code: "body_too_large",
                    "the body is larger than \(AdminAPI.maxBodyBytes) bytes"
                )
                return finish(AdminAPI.failure(error), context: context)
            }
            let request = AdminRequest(method: head.method, uri: head.uri, headers: head.headers, body: body)
            body = ByteBuffer()
            let keepAlive = head.isKeepAlive
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            api.handle(request, on: context.eventLoop).hop(to: context.eventLoop).whenSuccess { response in
                let (handler, context) = bound.value
                handler.write(response, keepAlive: keepAlive, context: context)
                if keepAlive { handler.startTimer(context: context) }
            }
        }
    }

    /// Answers and closes: the rest of what the client sends is not read.
    private func finish(_ response: AdminResponse, context: ChannelHandlerContext) {
        done = true
        head = nil
        body = ByteBuffer()
        timer?.cancel()
        context.channel.setOption(.autoRead, value: false).whenFailure { _ in }
        write(response, keepAlive: false, context: context)
    }

    /// The next request must be whole within `requestTimeout`.
    private func startTimer(context: ChannelHandlerContext) {
        timer?.cancel()
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: Self.requestTimeout) {
            let (handler, context) = bound.value
            guard !handler.done else { return }
            // Idle between requests: closed without a word, as a keep-alive connection is.
            guard handler.head != nil else {
                handler.done = true
                return context.close(promise: nil)
            }
            let error = AdminError(
                .requestTimeout,
                code: "request_timeout",
                "no whole request within \(Self.requestTimeout.nanoseconds / 1_000_000_000) s"
            )
            handler.finish(AdminAPI.failure(error), context: context)
        }
    }

    private func write(_ response: AdminResponse, keepAlive: Bool, context: ChannelHandlerContext) {
        var headers = response.headers
        headers.replaceOrAdd(name: "content-length", value: String(response.body.readableBytes))
        headers.replaceOrAdd(name: "connection", value: keepAlive ? "keep-alive" : "close")
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers))),
            promise: nil
        )
        context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            done.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}

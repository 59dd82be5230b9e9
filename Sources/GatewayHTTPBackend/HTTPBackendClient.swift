import GatewayCore
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import ReadableErrors

/// HTTP/1.1 to an `http` route's app: keep-alive connections, at most `connections` of them,
/// one request at a time each; requests beyond them wait for one in order. Every request has
/// a deadline that counts the wait. The answer is read whole, up to `maxResponseBytes`.
///
/// Failures say whether the request can have reached the app: a refused or failed connect
/// (`unreachable`) never did, so even a `message` may be sent again; after a write (`failed`,
/// `timeout`) the app may have seen it.
public final class HTTPBackendClient: Sendable {
    public struct Response: Sendable {
        public var status: Int
        public var headers: HTTPHeaders
        public var body: ByteBuffer
    }

    /// Why a request has no answer.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public enum Code: String, Sendable {
            /// No connection to the app (refused, or none within the deadline): nothing was sent.
            case unreachable
            /// The connection ended before a whole answer.
            case failed
            case timeout
            /// An answer larger than `max_response_bytes`.
            case tooLarge = "too-large"
        }
        public var code: Code
        public var message: String
        public init(_ code: Code, _ message: String) {
            self.code = code
            self.message = message
        }
        /// Whether the app cannot have seen the request.
        public var neverSent: Bool { code == .unreachable }
        public var description: String { "\(code.rawValue): \(message)" }
    }

    private struct State {
        var idle: [any Channel] = []
        var open = 0
        var waiters: CircularBuffer<EventLoopPromise<any Channel>> = []
        var closed = false
    }

    private let settings: HTTPBackendSettings
    private let group: any EventLoopGroup
    private let state = NIOLockedValueBox(State())
    /// Whether the app accepted the last connection made to it (requests' and probes').
    public let reachability = Reachability()
    /// Told when the app becomes reachable (true) or not (false, with why), for the log.
    private let reachabilityChanged: @Sendable (Bool, String?) -> Void

    public init(
        settings: HTTPBackendSettings,
        group: any EventLoopGroup,
        reachabilityChanged: @escaping @Sendable (Bool, String?) -> Void = { _, _ in }
    ) {
        self.settings = settings
        self.group = group
        self.reachabilityChanged = reachabilityChanged
    }

    /// Connects to the app and closes again: whether it accepts connections now.
    public func probe() -> EventLoopFuture<Void> {
        let eventLoop = group.next()
        let bootstrap = ClientBootstrap(group: eventLoop).connectTimeout(settings.timeout)
        let connected: EventLoopFuture<any Channel>
        switch settings.endpoint {
        case .tcp(let host, let port): connected = bootstrap.connect(host: host, port: port)
        case .unix(let path): connected = bootstrap.connect(unixDomainSocketPath: path)
        }
        return connected.flatMap { channel in
            self.record(reachable: true, nil)
            return channel.close()
        }.flatMapErrorThrowing { error in
            self.record(reachable: false, error)
            throw error
        }
    }

    private func record(reachable: Bool, _ error: (any Error)?) {
        if let news = reachability.record(reachable: reachable) {
            reachabilityChanged(news, error.map(ReadableError.describe))
        }
    }

    /// Connections open now (idle or busy), for tests and the admin API.
    public var openConnections: Int { state.withLockedValue { $0.open } }

    /// Posts `body` with `headers` (Host, Content-Length and Connection are added); completes on
    /// `eventLoop`.
    public func post(headers: HTTPHeaders, body: ByteBuffer, on eventLoop: any EventLoop) -> EventLoopFuture<Response> {
        let promise = eventLoop.makePromise(of: Response.self)
        // Whether the request is over (answered, failed, or past its deadline), and the
        // connection it holds: a deadline closes that connection, and a connection that comes
        // free after the deadline does not send the request at all.
        let progress = NIOLockedValueBox<(done: Bool, channel: (any Channel)?)>((false, nil))
        let timeout = settings.timeout
        let deadline = eventLoop.scheduleTask(in: timeout) {
            let channel = progress.withLockedValue { progress -> (any Channel)?? in
                guard !progress.done else { return nil }
                progress.done = true
                return .some(progress.channel)
            }
            guard let channel else { return }
            if let channel {
                channel.close(promise: nil)
                promise.fail(Failure(.timeout, "no answer within \(ValueParsing.format(timeout))"))
            } else {
                promise.fail(Failure(.unreachable, "no connection to the app within \(ValueParsing.format(timeout))"))
            }
        }
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: settings.path, headers: headers)
        head.headers.replaceOrAdd(name: "Host", value: settings.hostHeader)
        head.headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
        head.headers.replaceOrAdd(name: "Connection", value: "keep-alive")
        let request = head
        acquire(on: eventLoop).whenComplete { result in
            switch result {
            case .failure(let error):
                guard
                    progress.withLockedValue({ progress in
                        defer { progress.done = true }
                        return !progress.done
                    })
                else { return }
                deadline.cancel()
                promise.fail(error as? Failure ?? Failure(.unreachable, "\(error)"))
            case .success(let channel):
                let late = progress.withLockedValue { progress -> Bool in
                    if progress.done { return true }
                    progress.channel = channel
                    return false
                }
                if late { return self.release(channel, reusable: true) }
                self.exchange(request, body, on: channel).hop(to: eventLoop).whenComplete { outcome in
                    let first = progress.withLockedValue { progress in
                        defer { progress.done = true }
                        return !progress.done
                    }
                    switch outcome {
                    case .success(let (response, keepAlive)):
                        self.release(channel, reusable: keepAlive && first)
                        if first { promise.succeed(response) }
                    case .failure(let error):
                        self.release(channel, reusable: false)
                        if first { promise.fail(error) }
                    }
                    if first { deadline.cancel() }
                }
            }
        }
        return promise.futureResult
    }

    /// Closes the idle connections; busy ones close when their request ends.
    public func shutDown() {
        let (idle, waiters) = state.withLockedValue { state in
            state.closed = true
            defer {
                state.idle = []
                state.waiters = []
            }
            return (state.idle, Array(state.waiters))
        }
        for channel in idle { channel.close(promise: nil) }
        for waiter in waiters { waiter.fail(Failure(.unreachable, "the route was retired")) }
    }

    // MARK: The pool

    private enum Next {
        case use(any Channel)
        case connect
        case wait
    }

    private func acquire(on eventLoop: any EventLoop) -> EventLoopFuture<any Channel> {
        let promise = eventLoop.makePromise(of: (any Channel).self)
        let next = state.withLockedValue { state -> Next in
            // Idle connections the app closed meanwhile are gone from the pool.
            let idle = state.idle.count
            state.idle.removeAll { !$0.isActive }
            state.open -= idle - state.idle.count
            // One on the asking connection's own loop first (no thread hop either way), then a
            // new one there while the pool has room, then any idle one.
            if let index = state.idle.lastIndex(where: { $0.eventLoop === eventLoop }) {
                return .use(state.idle.remove(at: index))
            }
            if state.open < settings.connections {
                state.open += 1
                return .connect
            }
            if let channel = state.idle.popLast() { return .use(channel) }
            state.waiters.append(promise)
            return .wait
        }
        switch next {
        case .use(let channel): promise.succeed(channel)
        case .connect: connect(on: eventLoop).cascade(to: promise)
        case .wait: break
        }
        return promise.futureResult
    }

    /// A connection is done with a request: to the next waiter, to the idle list, or closed
    /// (making room for a waiter's new one).
    private func release(_ channel: any Channel, reusable: Bool) {
        let usable = reusable && channel.isActive
        let (next, keep) = state.withLockedValue { state -> ((EventLoopPromise<any Channel>, Bool)?, Bool) in
            if let waiter = state.waiters.popFirst() {
                // Not reusable: `open` stays, the waiter's new connection takes this one's place.
                return ((waiter, usable), usable)
            }
            if usable, !state.closed {
                state.idle.append(channel)
                return (nil, true)
            }
            state.open -= 1
            return (nil, false)
        }
        if !keep { channel.close(promise: nil) }
        guard let (waiter, reuse) = next else { return }
        if reuse {
            waiter.succeed(channel)
        } else {
            connect(on: waiter.futureResult.eventLoop).cascade(to: waiter)
        }
    }

    private func connect(on eventLoop: any EventLoop) -> EventLoopFuture<any Channel> {
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(settings.timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(
                        ExchangeHandler(maxBodyBytes: self.settings.maxResponseBytes)
                    )
                }
            }
        let connected: EventLoopFuture<any Channel>
        switch settings.endpoint {
        case .tcp(let host, let port): connected = bootstrap.connect(host: host, port: port)
        case .unix(let path): connected = bootstrap.connect(unixDomainSocketPath: path)
        }
        return connected.map { channel in
            self.record(reachable: true, nil)
            return channel
        }.flatMapErrorThrowing { error in
            self.record(reachable: false, error)
            // The slot taken for it goes to the next waiter (which tries for itself), or is free.
            let waiter = self.state.withLockedValue { state -> EventLoopPromise<any Channel>? in
                if let waiter = state.waiters.popFirst() { return waiter }
                state.open -= 1
                return nil
            }
            if let waiter { self.connect(on: waiter.futureResult.eventLoop).cascade(to: waiter) }
            throw Failure(.unreachable, "cannot connect to \(self.settings.urlText): \(ReadableError.describe(error))")
        }
    }

    private func exchange(
        _ head: HTTPRequestHead,
        _ body: ByteBuffer,
        on channel: any Channel
    ) -> EventLoopFuture<(Response, Bool)> {
        let promise = channel.eventLoop.makePromise(of: (Response, Bool).self)
        channel.eventLoop.execute {
            guard channel.isActive else {
                // Closed by the app while idle: it never saw this request.
                return promise.fail(Failure(.unreachable, "the app closed the connection"))
            }
            do {
                let handler = try channel.pipeline.syncOperations.handler(type: ExchangeHandler.self)
                handler.start(promise)
                channel.write(HTTPClientRequestPart.head(head), promise: nil)
                if body.readableBytes > 0 { channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil) }
                channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            } catch {
                promise.fail(Failure(.failed, "\(error)"))
            }
        }
        return promise.futureResult
    }

    /// Reads one answer per request; an answer that ends the connection or exceeds the limit
    /// fails the request.
    private final class ExchangeHandler: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPClientResponsePart

        private let maxBodyBytes: Int
        private var promise: EventLoopPromise<(Response, Bool)>?
        private var head: HTTPResponseHead?
        private var body = ByteBuffer()
        private var tooLarge = false

        init(maxBodyBytes: Int) {
            self.maxBodyBytes = maxBodyBytes
        }

        func start(_ promise: EventLoopPromise<(Response, Bool)>) {
            self.promise = promise
            head = nil
            body.clear()
            tooLarge = false
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
            case .body(var buffer):
                guard !tooLarge else { return }
                if body.readableBytes + buffer.readableBytes > maxBodyBytes {
                    tooLarge = true
                    promise?.fail(Failure(.tooLarge, "an answer larger than \(maxBodyBytes) bytes"))
                    promise = nil
                    context.close(promise: nil)
                    return
                }
                body.writeBuffer(&buffer)
            case .end:
                guard let head, let promise else { return }
                self.promise = nil
                let response = Response(status: Int(head.status.code), headers: head.headers, body: body)
                promise.succeed((response, head.isKeepAlive))
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            promise?.fail(Failure(.failed, "\(error)"))
            promise = nil
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            promise?.fail(Failure(.failed, "the app closed the connection before a whole answer"))
            promise = nil
            context.fireChannelInactive()
        }
    }
}

import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// One RESP3 connection to Redis: commands answered in order, and out-of-band pushes (published
/// messages) handed to `onPush`. RESP3 lets one connection both subscribe and run commands, so a
/// gateway needs only this one.
///
/// Strict and bounded: replies are size-limited by `RESPDecoder.Limits`, every command has a
/// timeout, and a timeout closes the connection (a late reply could no longer be matched to its
/// command). Commands fail with a `RedisError`; none is retried here — the caller decides.
public final class RedisConnection: Sendable {
    public struct Configuration: Sendable {
        public var connectTimeout: TimeAmount
        public var commandTimeout: TimeAmount
        public var limits: RESPDecoder.Limits
        /// `CLIENT SETNAME`, so `CLIENT LIST` on the server says who is connected.
        public var clientName: String?
        public init(
            connectTimeout: TimeAmount = .seconds(2),
            commandTimeout: TimeAmount = .seconds(2),
            limits: RESPDecoder.Limits = .init(),
            clientName: String? = nil
        ) {
            self.connectTimeout = connectTimeout
            self.commandTimeout = commandTimeout
            self.limits = limits
            self.clientName = clientName
        }
    }

    /// A push that is not a subscription confirmation: `["message", channel, payload]`,
    /// `["pmessage", pattern, channel, payload]`, `["smessage", channel, payload]`, or another.
    public typealias PushHandler = @Sendable (_ push: [RESPValue]) -> Void

    public let channel: any Channel
    public let endpoint: RedisEndpoint

    private init(channel: any Channel, endpoint: RedisEndpoint) {
        self.channel = channel
        self.endpoint = endpoint
    }

    /// Connects, switches to RESP3 (`HELLO 3`, with `AUTH` when the endpoint has credentials),
    /// names the client, and selects the database.
    public static func connect(
        to endpoint: RedisEndpoint,
        configuration: Configuration = .init(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        onPush: @escaping PushHandler = { _ in }
    ) async throws(RedisError) -> RedisConnection {
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        ByteToMessageHandler(RESPDecoder(limits: configuration.limits)),
                        MessageToByteHandler(RESPCommandEncoder()),
                        RedisCommandHandler(timeout: configuration.commandTimeout, onPush: onPush),
                    ])
                }
            }
        let channel: any Channel
        do {
            switch endpoint.address {
            case .tcp(let host, let port):
                channel = try await bootstrap.channelOption(.tcpOption(.tcp_nodelay), value: 1).connect(
                    host: host,
                    port: port
                ).get()
            case .unix(let path):
                channel = try await bootstrap.connect(unixDomainSocketPath: path).get()
            }
        } catch {
            throw RedisError(.connection, "cannot connect to \(endpoint.description): \(error)")
        }
        let connection = RedisConnection(channel: channel, endpoint: endpoint)
        do {
            try await connection.handshake(configuration: configuration)
        } catch {
            try? await channel.close()
            throw error
        }
        return connection
    }

    /// RESP3, credentials, client name, database.
    private func handshake(configuration: Configuration) async throws(RedisError) {
        var hello = ["HELLO", "3"]
        if let password = endpoint.password {
            hello += ["AUTH", endpoint.user ?? "default", password]
        }
        if let name = configuration.clientName { hello += ["SETNAME", name] }
        do {
            _ = try await send(hello)
        } catch  where error.code == .server && error.message.hasPrefix("ERR unknown command") {
            throw RedisError(
                .protocolViolation,
                "the server does not speak RESP3 (HELLO 3): Redis 6 or later is needed"
            )
        }
        if endpoint.database != 0 {
            _ = try await send(["SELECT", String(endpoint.database)])
        }
    }

    /// Runs one command; error replies throw `RedisError` with code `.server`.
    @discardableResult
    public func send(_ arguments: [String]) async throws(RedisError) -> RESPValue {
        try await send(arguments.map { ByteBuffer(string: $0) })
    }

    @discardableResult
    public func send(_ arguments: [ByteBuffer]) async throws(RedisError) -> RESPValue {
        try await run(RedisCommand(arguments: arguments, expectation: .reply, promise: channel.eventLoop.makePromise()))
    }

    /// Sends a command without waiting for its reply (a failure closes nothing: it is counted
    /// by the caller through `onReply`, if given). For publishes on the hot path.
    public func sendWithoutWaiting(
        _ arguments: [ByteBuffer],
        onReply: (@Sendable (Result<RESPValue, RedisError>) -> Void)? = nil
    ) {
        let promise = channel.eventLoop.makePromise(of: RESPValue.self)
        if let onReply {
            promise.futureResult.whenComplete { result in
                onReply(result.mapError { $0 as? RedisError ?? RedisError(.connection, "\($0)") })
            }
        } else {
            promise.futureResult.whenFailure { _ in }
        }
        submit(RedisCommand(arguments: arguments, expectation: .reply, promise: promise))
    }

    /// Writes a command. Its promise is completed by the handler once the handler took it; a
    /// write that never reached the handler (the channel closed and its pipeline was torn
    /// down) fails it here.
    private func submit(_ command: RedisCommand) {
        channel.writeAndFlush(command).whenFailure { error in
            guard !command.taken.withLockedValue({ $0 }) else { return }
            command.promise.fail(RedisError(.connection, "the connection to Redis is closed"))
        }
    }

    /// `SUBSCRIBE`, `PSUBSCRIBE` or `SSUBSCRIBE` (`kind` is the command): returns once Redis
    /// confirmed every name. Messages then arrive through `onPush`.
    public func subscribe(_ kind: String, _ names: [String]) async throws(RedisError) {
        precondition(!names.isEmpty, "subscribe to at least one name")
        let confirmation = kind.lowercased()
        _ = try await run(
            RedisCommand(
                arguments: ([kind] + names).map { ByteBuffer(string: $0) },
                expectation: .confirmations(kind: confirmation, remaining: names.count),
                promise: channel.eventLoop.makePromise()
            )
        )
    }

    public var isActive: Bool { channel.isActive }

    /// Completes when the connection is closed, by either side.
    public var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    public func close() async {
        try? await channel.close()
    }

    private func run(_ command: RedisCommand) async throws(RedisError) -> RESPValue {
        submit(command)
        do {
            return try await command.promise.futureResult.get()
        } catch let error as RedisError {
            throw error
        } catch {
            throw RedisError(.connection, "\(error)")
        }
    }
}

/// A command on its way: its arguments, what answers it, and who waits.
struct RedisCommand: Sendable {
    enum Expectation: Sendable {
        /// One reply.
        case reply
        /// One confirmation push per name (RESP3 answers SUBSCRIBE with pushes).
        case confirmations(kind: String, remaining: Int)
    }

    var arguments: [ByteBuffer]
    var expectation: Expectation
    var promise: EventLoopPromise<RESPValue>
    /// Set by the handler when it takes the command: from then on it completes the promise.
    let taken = NIOLockedValueBox(false)

    init(arguments: [ByteBuffer], expectation: Expectation, promise: EventLoopPromise<RESPValue>) {
        self.arguments = arguments
        self.expectation = expectation
        self.promise = promise
    }
}

/// Matches replies to commands in order, routes pushes, and enforces the command timeout.
final class RedisCommandHandler: ChannelDuplexHandler {
    typealias InboundIn = RESPValue
    typealias OutboundIn = RedisCommand
    typealias OutboundOut = [ByteBuffer]

    private struct Pending {
        var command: RedisCommand
        var deadline: NIODeadline
    }

    private let timeout: TimeAmount
    private let onPush: RedisConnection.PushHandler
    private var pending = CircularBuffer<Pending>()
    private var timer: Scheduled<Void>?
    private var closed = false

    init(timeout: TimeAmount, onPush: @escaping RedisConnection.PushHandler) {
        self.timeout = timeout
        self.onPush = onPush
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let command = unwrapOutboundIn(data)
        command.taken.withLockedValue { $0 = true }
        guard !closed else {
            command.promise.fail(RedisError(.connection, "the connection to Redis is closed"))
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        pending.append(Pending(command: command, deadline: .now() + timeout))
        if timer == nil { armTimer(context: context) }
        context.write(wrapOutboundOut(command.arguments), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let value = unwrapInboundIn(data)
        if case .push(let elements) = value {
            let kind = elements.first?.string?.lowercased() ?? ""
            if var head = pending.first, case .confirmations(let expected, let remaining) = head.command.expectation,
                kind == expected
            {
                if remaining <= 1 {
                    pending.removeFirst()
                    head.command.promise.succeed(value)
                } else {
                    head.command.expectation = .confirmations(kind: expected, remaining: remaining - 1)
                    pending[pending.startIndex] = head
                }
                return
            }
            onPush(elements)
            return
        }
        guard let head = pending.popFirst() else {
            return fail(context: context, RedisError(.protocolViolation, "a reply that no command asked for"))
        }
        if case .error(let error) = value {
            head.command.promise.fail(error)
        } else {
            head.command.promise.succeed(value)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context: context, error as? RedisError ?? RedisError(.connection, "\(error)"))
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        timer?.cancel()
        failAll(RedisError(.connection, "the connection to Redis closed"))
        context.fireChannelInactive()
    }

    private func armTimer(context: ChannelHandlerContext) {
        guard let deadline = pending.first?.deadline else {
            timer = nil
            return
        }
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            self.timer = nil
            guard let head = self.pending.first else { return }
            if head.deadline <= .now() {
                self.fail(
                    context: context,
                    RedisError(.timeout, "no reply within \(self.timeout.nanoseconds / 1_000_000) ms")
                )
            } else {
                self.armTimer(context: context)
            }
        }
    }

    private func fail(context: ChannelHandlerContext, _ error: RedisError) {
        closed = true
        timer?.cancel()
        failAll(error)
        context.close(promise: nil)
    }

    private func failAll(_ error: RedisError) {
        while let entry = pending.popFirst() {
            entry.command.promise.fail(error)
        }
    }
}

import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket
import ReadableErrors

/// `wssgate probe wss://…`: opens a WebSocket, sends one text message and returns the first
/// message that comes back — a route checked end to end, from an image without any client.
struct WebSocketProbe {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    var host: String
    var port: Int
    var path: String
    var tls: HTTPExchange.TLSOptions?
    var timeout: TimeAmount

    private enum Upgrade {
        case upgraded(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>)
        case refused
    }

    /// Sends `text` and returns the first text or binary message's payload.
    func exchange(_ text: String) async throws -> ByteBuffer {
        let authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let sslContext: NIOSSLContext?
        if let tls {
            var configuration = TLSConfiguration.makeClientConfiguration()
            if tls.insecure { configuration.certificateVerification = .none }
            if let caFile = tls.caFile { configuration.trustRoots = .file(caFile) }
            sslContext = try NIOSSLContext(configuration: configuration)
        } else {
            sslContext = nil
        }
        let serverName = host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : host
        let head = HTTPRequestHead(
            version: .http1_1,
            method: .GET,
            uri: path,
            headers: ["Host": authority, "User-Agent": "wssgate/\(WSSGate.version)", "Content-Length": "0"]
        )
        let upgrade: EventLoopFuture<Upgrade>
        do {
            upgrade = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(timeout)
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let sslContext {
                            try channel.pipeline.syncOperations.addHandler(
                                NIOSSLClientHandler(context: sslContext, serverHostname: serverName)
                            )
                        }
                        let upgrader = NIOTypedWebSocketClientUpgrader<Upgrade>(maxFrameSize: 1 << 20) { channel, _ in
                            channel.eventLoop.makeCompletedFuture {
                                .upgraded(try NIOAsyncChannel(wrappingChannelSynchronously: channel))
                            }
                        }
                        let configuration = NIOTypedHTTPClientUpgradeConfiguration<Upgrade>(
                            upgradeRequestHead: head,
                            upgraders: [upgrader],
                            notUpgradingCompletionHandler: { channel in
                                channel.eventLoop.makeCompletedFuture { .refused }
                            }
                        )
                        return try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(
                            configuration: .init(upgradeConfiguration: configuration)
                        )
                    }
                }
        } catch {
            throw Failure(description: "cannot connect to \(authority): \(ReadableError.describe(error))")
        }
        let answer = Task {
            switch try await upgrade.get() {
            case .refused:
                throw Failure(description: "\(authority)\(path): the server did not upgrade to WebSocket")
            case .upgraded(let channel):
                return try await Self.roundTrip(text, on: channel)
            }
        }
        let deadline = Task {
            try await Task.sleep(nanoseconds: UInt64(timeout.nanoseconds))
            answer.cancel()
        }
        defer { deadline.cancel() }
        do {
            return try await answer.value
        } catch let failure as Failure {
            throw failure
        } catch is CancellationError {
            throw Failure(description: "no answer from \(authority) within \(ReadableError.seconds(timeout))")
        } catch {
            throw Failure(description: "\(authority): \(ReadableError.describe(error))")
        }
    }

    /// One message out, the first message back (pings answered, a close reported), then a close.
    private static func roundTrip(
        _ text: String,
        on channel: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>
    ) async throws -> ByteBuffer {
        try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(
                WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: ByteBuffer(string: text))
            )
            var message = ByteBuffer()
            for try await frame in inbound {
                switch frame.opcode {
                case .text, .binary, .continuation:
                    var data = frame.unmaskedData
                    message.writeBuffer(&data)
                    guard frame.fin else { continue }
                    var close = ByteBuffer()
                    close.write(webSocketErrorCode: .normalClosure)
                    try await outbound.write(
                        WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: close)
                    )
                    return message
                case .ping:
                    try await outbound.write(
                        WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)
                    )
                case .connectionClose:
                    var data = frame.unmaskedData
                    let code = data.readWebSocketErrorCode().map { "\(UInt16(webSocketErrorCode: $0))" } ?? "none"
                    throw Failure(description: "the server closed the connection (\(code)) before answering")
                default:
                    continue
                }
            }
            throw Failure(description: "the connection ended before an answer")
        }
    }
}

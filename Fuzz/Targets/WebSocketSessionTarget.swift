import GatewayCore
import GatewayWebSocket
import Logging
import NIOCore
import NIOEmbedded
import NIOWebSocket

/// One WebSocket session as a client's bytes reach it after the upgrade: framing, fragments,
/// permessage-deflate, control frames, close codes and UTF-8, through an `EmbeddedChannel`.
///
/// The first byte picks the session's options (compression, its context takeover, a small or a
/// large message limit) and the second the size of the reads; the rest is what the client sent.
///
/// Invariants: the application only ever gets whole messages within the limit, and text that is
/// UTF-8; what the server writes parses as unmasked frames, none after its Close, whose code is
/// one a server may send and whose reason is UTF-8; the session opens and closes exactly once.
enum WebSocketSessionTarget {
    static let logger = Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Echoes, and checks what the session hands over.
    final class CheckingEcho: WebSocketApplication {
        let maxMessageBytes: Int
        var opened = 0
        var closed = 0
        var problems: [String] = []

        init(maxMessageBytes: Int) {
            self.maxMessageBytes = maxMessageBytes
        }

        func sessionDidOpen(_ session: WebSocketSessionHandler) { opened += 1 }

        func session(_ session: WebSocketSessionHandler, didReceive message: WebSocketMessage) {
            if message.data.readableBytes > maxMessageBytes {
                problems.append("a message of \(message.data.readableBytes) bytes passed a limit of \(maxMessageBytes)")
            }
            if message.kind == .text, String(validating: message.data.readableBytesView, as: UTF8.self) == nil {
                problems.append("a text message that is not UTF-8 reached the application")
            }
            if closed > 0 { problems.append("a message after the session closed") }
            session.send(message)
        }

        func sessionDidClose(_ session: WebSocketSessionHandler, code: WebSocketErrorCode?) { closed += 1 }
    }

    static let target = FuzzTarget(name: "websocket-session") { data throws(FuzzFailure) in
        var input = FuzzInput(data)
        let options = input.byte()
        let readSize = Int(input.byte())
        let bytes = input.rest()

        let maxMessageBytes = options & 2 == 0 ? 64 * 1024 : 300
        var deflate: PerMessageDeflateParameters?
        if options & 1 != 0 {
            let offer =
                options & 4 == 0
                ? "permessage-deflate" : "permessage-deflate; client_no_context_takeover; server_no_context_takeover"
            deflate = PerMessageDeflateNegotiation.negotiate(headerValues: [offer], settings: CompressionSettings())
        }
        let application = CheckingEcho(maxMessageBytes: maxMessageBytes)
        let channel = EmbeddedChannel()
        let session = WebSocketSessionHandler(
            configuration: .init(
                routeName: "fuzz",
                limits: WebSocketLimits(
                    maxMessageBytes: maxMessageBytes,
                    maxMessagesPerSecond: options & 8 == 0 ? 0 : 100,
                    messageBurst: 20
                ),
                deflate: deflate,
                subprotocol: nil
            ),
            application: application,
            peer: "fuzz",
            logger: logger
        )
        try? channel.pipeline.syncOperations.addHandler(session)
        _ = try? channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()

        let written = EmbeddedConnection.exchange(channel, bytes: bytes, readSize: readSize)

        try FuzzFailure.check(application.problems.isEmpty, application.problems.joined(separator: "; "))
        try FuzzFailure.check(application.opened == 1, "the session opened \(application.opened) times")
        try FuzzFailure.check(application.closed == 1, "the session closed \(application.closed) times")
        try checkServerFrames(written)
    }

    /// What the server wrote is a clean sequence of server frames.
    static func checkServerFrames(_ bytes: ByteBuffer) throws(FuzzFailure) {
        var buffer = bytes
        let parser = WebSocketFrameParser(maxFrameBytes: 1 << 20)
        var closed = false
        while buffer.readableBytes > 0 {
            let frame: WebSocketFrameParser.Frame?
            do {
                frame = try parser.parse(&buffer)
            } catch {
                throw FuzzFailure("the server wrote a malformed frame: \(error)")
            }
            guard let frame else { throw FuzzFailure("the server wrote a frame cut short") }
            try FuzzFailure.check(frame.mask == nil, "the server masked a frame")
            try FuzzFailure.check(!closed, "the server wrote \(frame.opcode) after its Close")
            try FuzzFailure.check(!frame.rsv2 && !frame.rsv3, "the server set RSV2 or RSV3")
            if frame.opcode == .connectionClose {
                closed = true
                var payload = frame.payload
                try FuzzFailure.check(payload.readableBytes != 1, "a Close frame of one byte")
                if let code = payload.readInteger(as: UInt16.self) {
                    try FuzzFailure.check(
                        (1000...1003).contains(code) || (1007...1014).contains(code) || (3000...4999).contains(code),
                        "the server closed with code \(code)"
                    )
                    try FuzzFailure.check(
                        String(validating: payload.readableBytesView, as: UTF8.self) != nil,
                        "the server's close reason is not UTF-8"
                    )
                }
            }
        }
    }
}

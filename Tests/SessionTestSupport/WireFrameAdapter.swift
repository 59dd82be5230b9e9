import GatewayWebSocket
import NIOCore
import NIOWebSocket

/// The client's end of the wire, in front of a session on an `EmbeddedChannel`: tests write
/// NIOWebSocket frames (their payload already masked as given) and read the session's frames
/// back as NIOWebSocket frames, while the session sees and writes bytes, as on a socket.
///
/// Inbound frames are encoded by hand, byte for byte as given, so a test can send what a
/// real encoder would refuse to (an unmasked frame, reserved bits). Outbound bytes are read
/// with the gateway's own `WebSocketFrameParser`; Autobahn and the end-to-end clients check
/// the bytes with parsers that are not ours.
public final class WireFrameAdapter: ChannelDuplexHandler {
    public typealias InboundIn = WebSocketFrame
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = WebSocketFrame

    private var written = ByteBuffer()
    private let parser = WebSocketFrameParser(maxFrameBytes: 1 << 30)

    public init() {}

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        context.fireChannelRead(wrapInboundOut(Self.encode(frame)))
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var bytes = unwrapOutboundIn(data)
        written.writeBuffer(&bytes)
        // The session never writes a frame the parser would refuse.
        while let frame = try! parser.parse(&written) {
            context.write(
                wrapOutboundOut(
                    WebSocketFrame(
                        fin: frame.fin,
                        rsv1: frame.rsv1,
                        rsv2: frame.rsv2,
                        rsv3: frame.rsv3,
                        opcode: frame.opcode,
                        maskKey: frame.maskKey,
                        data: frame.payload
                    )
                ),
                promise: nil
            )
        }
        written.discardReadBytes()
        promise?.succeed()
    }

    /// `frame` on the wire: header, the masking key when there is one, the data unchanged.
    public static func encode(_ frame: WebSocketFrame) -> ByteBuffer {
        var wire = ByteBuffer()
        var first = UInt8(webSocketOpcode: frame.opcode)
        if frame.fin { first |= 0x80 }
        if frame.rsv1 { first |= 0x40 }
        if frame.rsv2 { first |= 0x20 }
        if frame.rsv3 { first |= 0x10 }
        wire.writeInteger(first)
        let mask: UInt8 = frame.maskKey == nil ? 0 : 0x80
        let length = frame.data.readableBytes
        if length < 126 {
            wire.writeInteger(mask | UInt8(length))
        } else if length <= 0xFFFF {
            wire.writeInteger(mask | 126)
            wire.writeInteger(UInt16(length))
        } else {
            wire.writeInteger(mask | 127)
            wire.writeInteger(UInt64(length))
        }
        if let key = frame.maskKey { wire.writeBytes(key) }
        wire.writeImmutableBuffer(frame.data)
        return wire
    }
}

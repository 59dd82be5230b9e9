import NIOCore
import NIOWebSocket

extension WebSocketFrame {
    /// The payload unmasked eight bytes at a time. NIOWebSocket's `unmaskedData` works byte by
    /// byte: profiled on the worker route with 4 KiB messages it was 27% of the gateway's CPU,
    /// more than TLS. Same result, same copy-on-write (a payload shared with the read buffer is
    /// copied once, as there).
    var unmaskedPayload: ByteBuffer {
        guard let key = maskKey else { return data }
        var payload = data
        FrameUnmasking.unmask(&payload, key: key, indexOffset: extensionData?.readableBytes ?? 0)
        return payload
    }
}

/// XOR with the masking key (RFC 6455 §5.3), a word at a time.
enum FrameUnmasking {
    /// `indexOffset`: where in the frame's masked data the buffer's first byte is.
    static func unmask(_ buffer: inout ByteBuffer, key: WebSocketMaskingKey, indexOffset: Int) {
        let keyBytes = (key[0], key[1], key[2], key[3])
        func keyByte(_ index: Int) -> UInt8 {
            switch index & 3 {
            case 0: keyBytes.0
            case 1: keyBytes.1
            case 2: keyBytes.2
            default: keyBytes.3
            }
        }
        // The key as it lies over eight bytes starting at the buffer's first byte, in memory
        // order: the same whatever the machine's endianness.
        var pattern: UInt64 = 0
        withUnsafeMutableBytes(of: &pattern) { bytes in
            for index in 0..<8 { bytes[index] = keyByte(indexOffset + index) }
        }
        buffer.withUnsafeMutableReadableBytes { bytes in
            let count = bytes.count
            var index = 0
            while index + 8 <= count {
                let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                bytes.storeBytes(of: word ^ pattern, toByteOffset: index, as: UInt64.self)
                index += 8
            }
            while index < count {
                bytes[index] ^= keyByte(indexOffset + index)
                index += 1
            }
        }
    }
}

/// Base64url without padding (RFC 4648 §5), as JOSE and ACME use it everywhere.
public enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    public static func encode<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> String {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count * 4 + 2) / 3)
        var iterator = bytes.makeIterator()
        while let first = iterator.next() {
            let second = iterator.next()
            let third = iterator.next()
            output.append(alphabet[Int(first >> 2)])
            output.append(alphabet[Int((first & 0x03) << 4 | (second ?? 0) >> 4)])
            if let second { output.append(alphabet[Int((second & 0x0F) << 2 | (third ?? 0) >> 6)]) }
            if let third { output.append(alphabet[Int(third & 0x3F)]) }
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Nil for anything but unpadded base64url (padding is tolerated, as some CAs hand out
    /// padded HMAC keys).
    public static func decode(_ text: String) -> [UInt8]? {
        var values: [UInt8] = []
        for byte in text.utf8 {
            switch byte {
            case 0x41...0x5A: values.append(byte - 0x41)
            case 0x61...0x7A: values.append(byte - 0x61 + 26)
            case 0x30...0x39: values.append(byte - 0x30 + 52)
            case 0x2D, 0x2B: values.append(62)  // '-' (and '+', from a padded standard key)
            case 0x5F, 0x2F: values.append(63)  // '_' (and '/')
            case 0x3D: continue
            default: return nil
            }
        }
        guard values.count % 4 != 1 else { return nil }
        var output: [UInt8] = []
        var index = 0
        while index < values.count {
            let chunk = values[index..<min(index + 4, values.count)]
            let a = chunk[chunk.startIndex]
            let b = chunk[chunk.startIndex + 1]
            output.append(a << 2 | b >> 4)
            if chunk.count > 2 {
                let c = chunk[chunk.startIndex + 2]
                output.append((b & 0x0F) << 4 | c >> 2)
                if chunk.count > 3 { output.append((c & 0x03) << 6 | chunk[chunk.startIndex + 3]) }
            }
            index += 4
        }
        return output
    }
}

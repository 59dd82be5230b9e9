import NIOCore

/// Incremental UTF-8 validation (RFC 3629), fed one fragment at a time.
///
/// RFC 6455 asks an endpoint to fail a text message as soon as it sees invalid UTF-8, even in the
/// middle of a fragmented message, so a validator that only checks a complete message is not
/// enough. A code point may be split across fragments; the state carries the split.
public struct UTF8Validator: Sendable {
    /// Continuation bytes still expected for the current code point.
    private var remaining: UInt8 = 0
    /// Allowed range of the next continuation byte (narrower after E0, ED, F0, F4).
    private var lower: UInt8 = 0x80
    private var upper: UInt8 = 0xBF

    public init() {}

    /// True when no code point is left half-finished.
    public var isAtBoundary: Bool { remaining == 0 }

    public mutating func reset() {
        self = UTF8Validator()
    }

    /// Validates the readable bytes of `buffer`; false at the first invalid byte.
    public mutating func validate(_ buffer: ByteBuffer) -> Bool {
        buffer.withUnsafeReadableBytes { validate($0) }
    }

    public mutating func validate(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        let count = bytes.count
        while index < count {
            if remaining == 0 {
                // ASCII fast path, eight bytes at a time.
                while index + 8 <= count {
                    let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                    if word & 0x8080_8080_8080_8080 != 0 { break }
                    index += 8
                }
                if index >= count { break }
                let byte = bytes[index]
                index += 1
                switch byte {
                case 0x00...0x7F: continue
                case 0xC2...0xDF:
                    remaining = 1
                    lower = 0x80
                    upper = 0xBF
                case 0xE0:
                    remaining = 2
                    lower = 0xA0
                    upper = 0xBF
                case 0xE1...0xEC, 0xEE...0xEF:
                    remaining = 2
                    lower = 0x80
                    upper = 0xBF
                case 0xED:
                    remaining = 2
                    lower = 0x80
                    upper = 0x9F  // no surrogates
                case 0xF0:
                    remaining = 3
                    lower = 0x90
                    upper = 0xBF  // no overlong 4-byte forms
                case 0xF1...0xF3:
                    remaining = 3
                    lower = 0x80
                    upper = 0xBF
                case 0xF4:
                    remaining = 3
                    lower = 0x80
                    upper = 0x8F  // nothing above U+10FFFF
                default: return false
                }
            } else {
                let byte = bytes[index]
                index += 1
                guard byte >= lower && byte <= upper else { return false }
                remaining -= 1
                lower = 0x80
                upper = 0xBF
            }
        }
        return true
    }

    /// Validates a complete byte sequence.
    public static func isValid(_ buffer: ByteBuffer) -> Bool {
        var validator = UTF8Validator()
        return validator.validate(buffer) && validator.isAtBoundary
    }
}

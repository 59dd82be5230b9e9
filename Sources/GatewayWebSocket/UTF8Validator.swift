import NIOCore

/// Incremental UTF-8 validation (RFC 3629), fed one fragment at a time.
///
/// RFC 6455 asks an endpoint to fail a text message as soon as it sees invalid UTF-8, even in the
/// middle of a fragmented message, so a validator that only checks a complete message is not
/// enough. A code point may be split across fragments; the state carries the split.
///
/// Three speeds, picked per stretch of text: pure ASCII 32 bytes at a time; text of ASCII and
/// two-byte sequences (Latin, Greek, Cyrillic, Hebrew, Arabic) eight bytes at a time with word
/// arithmetic; everything else through a shift-based DFA, one table load and one shift per byte.
/// Every text message the gateway receives or relays passes through here, so the per-byte cost
/// is the route's per-byte cost (`make micro-bench` measures each speed).
public struct UTF8Validator: Sendable {
    /// The DFA's state, as the bit offset of its row in ``UTF8DFA/table`` (a multiple of 6).
    private var state: UInt64 = UTF8DFA.accept

    public init() {}

    /// True when no code point is left half-finished (and nothing invalid was seen).
    public var isAtBoundary: Bool { state == UTF8DFA.accept }

    public mutating func reset() {
        state = UTF8DFA.accept
    }

    /// Validates the readable bytes of `buffer`; false once an invalid byte has been seen.
    public mutating func validate(_ buffer: ByteBuffer) -> Bool {
        buffer.withUnsafeReadableBytes { validate($0) }
    }

    /// Validates `bytes`, continuing the code point the previous call left open. An invalid
    /// byte makes this call and every later one return false (until ``reset()``).
    public mutating func validate(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress, state != UTF8DFA.error else { return state != UTF8DFA.error }
        let count = bytes.count
        let high: UInt64 = 0x8080_8080_8080_8080
        var state = self.state
        var index = 0
        UTF8DFA.table.withUnsafeBufferPointer { table in
            while index < count {
                if state == UTF8DFA.accept {
                    while index + 32 <= count {
                        let a = base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                        let b = base.loadUnaligned(fromByteOffset: index + 8, as: UInt64.self)
                        let c = base.loadUnaligned(fromByteOffset: index + 16, as: UInt64.self)
                        let d = base.loadUnaligned(fromByteOffset: index + 24, as: UInt64.self)
                        if (a | b | c | d) & high != 0 { break }
                        index += 32
                    }
                }
                if state == UTF8DFA.accept || state == UTF8DFA.oneMore {
                    // In a word with no byte of 111xxxxx, the text is valid exactly when every
                    // lead 110xxxxx (other than the overlong C0 and C1) is followed by one
                    // continuation 10xxxxxx and every continuation follows a lead. `carry` is the
                    // lead that ended the previous word, as the bit its continuation must have.
                    var carry: UInt64 = state == UTF8DFA.oneMore ? 0x80 : 0
                    while index + 8 <= count {
                        let word = base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                        let bit7 = word & high
                        let bit6 = (word << 1) & high
                        let bit5 = (word << 2) & high
                        let lead = bit7 & bit6
                        let continuation = bit7 & ~bit6
                        // Bit 7 set where any of bits 1-4 is: a lead of C0 or C1 has none.
                        let notOverlong = ((word & 0x1E1E_1E1E_1E1E_1E1E) &+ 0x7E7E_7E7E_7E7E_7E7E) & high
                        let mismatch = ((lead << 8) | carry) ^ continuation
                        if mismatch | (lead & (bit5 | ~notOverlong)) != 0 { break }
                        carry = (lead >> 63) << 7
                        index += 8
                    }
                    state = carry != 0 ? UTF8DFA.oneMore : UTF8DFA.accept
                }
                // Whatever the fast paths stopped at: the next 16 bytes byte by byte. An error
                // state stays (its row is all zeros), so it is checked once per stretch.
                let end = min(index + 16, count)
                while index < end {
                    state = table[Int(base.load(fromByteOffset: index, as: UInt8.self))] &>> state
                    index += 1
                }
                state &= 63
                if state == UTF8DFA.error { break }
            }
        }
        self.state = state
        return state != UTF8DFA.error
    }

    /// Validates a complete byte sequence.
    public static func isValid(_ buffer: ByteBuffer) -> Bool {
        var validator = UTF8Validator()
        return validator.validate(buffer) && validator.isAtBoundary
    }
}

/// The shift-based DFA (after Per Vognsen's construction): each state is a bit offset, and a
/// byte's 64-bit row holds, at that offset, the next state's offset. Nine states of six bits
/// fit one row, so a step is a load (independent of the state) and a shift.
enum UTF8DFA {
    static let error: UInt64 = 0
    static let accept: UInt64 = 6
    /// One continuation byte (80-BF) to go.
    static let oneMore: UInt64 = 12
    static let twoMore: UInt64 = 18
    /// After E0: A0-BF (no overlong three-byte forms), then one more.
    static let afterE0: UInt64 = 24
    /// After ED: 80-9F (no surrogates), then one more.
    static let afterED: UInt64 = 30
    static let threeMore: UInt64 = 36
    /// After F0: 90-BF (no overlong four-byte forms), then two more.
    static let afterF0: UInt64 = 42
    /// After F4: 80-8F (nothing above U+10FFFF), then two more.
    static let afterF4: UInt64 = 48

    static let table: [UInt64] = {
        var rows = [UInt64](repeating: 0, count: 256)
        func on(_ bytes: ClosedRange<Int>, from: UInt64, to: UInt64) {
            for byte in bytes { rows[byte] |= to << from }
        }
        on(0x00...0x7F, from: accept, to: accept)
        on(0xC2...0xDF, from: accept, to: oneMore)
        on(0xE0...0xE0, from: accept, to: afterE0)
        on(0xE1...0xEC, from: accept, to: twoMore)
        on(0xED...0xED, from: accept, to: afterED)
        on(0xEE...0xEF, from: accept, to: twoMore)
        on(0xF0...0xF0, from: accept, to: afterF0)
        on(0xF1...0xF3, from: accept, to: threeMore)
        on(0xF4...0xF4, from: accept, to: afterF4)
        on(0x80...0xBF, from: oneMore, to: accept)
        on(0x80...0xBF, from: twoMore, to: oneMore)
        on(0xA0...0xBF, from: afterE0, to: oneMore)
        on(0x80...0x9F, from: afterED, to: oneMore)
        on(0x80...0xBF, from: threeMore, to: twoMore)
        on(0x90...0xBF, from: afterF0, to: twoMore)
        on(0x80...0x8F, from: afterF4, to: twoMore)
        return rows
    }()
}

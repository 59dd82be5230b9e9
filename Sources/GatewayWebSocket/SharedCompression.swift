import NIOConcurrencyHelpers
import NIOCore

/// The compressed forms of one message that goes to many sessions (a hub publish), so it is
/// deflated once per set of compressor parameters rather than once per subscriber.
///
/// Only sessions whose compressor starts every message from a fresh context
/// (`server_no_context_takeover`) may use it: their output depends on the message and the
/// parameters alone. Sessions that keep a context compress for themselves.
public final class SharedCompression: @unchecked Sendable {
    /// What makes two sessions' compressed bytes equal.
    struct Key: Hashable, Sendable {
        var windowBits: Int
        var level: Int
        var memoryLevel: Int
    }

    /// Guards `forms` and `compressionCount`; held while compressing, so sessions on other event
    /// loops wait for the one result rather than each making their own.
    private let lock = NIOLock()
    private var forms: [Key: ByteBuffer] = [:]
    private var compressionCount = 0

    public init() {}

    /// The compressed payload for `key`, made by `compress` the first time.
    func payload(
        for key: Key,
        compress: () throws(PerMessageDeflate.Failure) -> ByteBuffer
    ) throws(PerMessageDeflate.Failure) -> ByteBuffer {
        lock.lock()
        defer { lock.unlock() }
        if let existing = forms[key] { return existing }
        let made = try compress()
        forms[key] = made
        compressionCount += 1
        return made
    }

    /// How many times the message was actually compressed (tests check it stays at one).
    public var compressions: Int { lock.withLock { compressionCount } }
}

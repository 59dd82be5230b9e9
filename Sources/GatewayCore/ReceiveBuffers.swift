import NIOCore

/// How much a connection's socket reads into at first.
///
/// NIO's default receive allocator starts every channel with a 2,048-byte buffer and keeps it
/// between reads. An idle WebSocket connection reads a TLS record of a few dozen bytes now and
/// then (a pong, a small message), so those 2 KiB are paid by every one of thousands of mostly
/// quiet connections. Measured on a fresh gateway holding 3,000 idle `wss://` connections
/// (`scripts/bench.py --memory`), starting at 256 bytes took the echo route from 26.7 to 25.2 KB
/// per connection and the hub route from 27.7 to 26.2 KB; 64 or 128 saved nothing more. The
/// allocator still doubles towards 64 KiB as soon as reads fill the buffer, so a busy
/// connection reads in large chunks after its first few reads.
public enum ReceiveBuffers {
    /// The first read's buffer size.
    public static let initial = 256
    /// The largest buffer a busy connection grows to (NIO's default).
    public static let maximum = 65_536

    /// The allocator for a client connection or a proxy's upstream connection.
    public static var connection: AdaptiveRecvByteBufferAllocator {
        AdaptiveRecvByteBufferAllocator(minimum: 64, initial: initial, maximum: maximum)
    }
}

import GatewayWebSocket
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// The C library's calls, under names that the methods of `HistoryLog` do not shadow.
private func systemOpen(_ path: String, _ flags: Int32, _ mode: mode_t = 0) -> Int32 { open(path, flags, mode) }
private func systemWrite(_ descriptor: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    write(descriptor, bytes, count)
}
private func systemRead(_ descriptor: Int32, _ bytes: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(descriptor, bytes, count)
}
private func systemError() -> String { String(cString: strerror(errno)) }

/// A route's history on disk (`storage: file`): an append-only file of records, each
/// `length u32 · checksum u32 · body`, the checksum FNV-1a over the body. Two kinds of body:
///
/// - epoch (`0x01`): topic str16, epoch str16, offset u64 — the topic's stream begins (or
///   begins again) at this epoch, its last offset being `offset`;
/// - publication (`0x02`): topic str16, offset u64, time i64 (ms since 1970), flags u8 (bit 0
///   binary, bit 1 already a hub event), payload (the rest).
///
/// A publication is written before anyone receives it, so a restart never hands out an offset
/// a client has seen with other content. Opening the file reads it back; a torn or corrupt tail
/// (a crash mid-write) is cut off and every stream in the file gets a new epoch, because
/// publications that clients may have received are then missing. The file is rewritten from
/// what is kept at open and whenever it has grown to four times that (and past 4 MiB), by
/// writing a new file and renaming it over the old one: a crash leaves one or the other.
///
/// The writes reach the kernel before the publication is delivered, so a killed process
/// loses nothing; an operating-system crash may lose what was not yet on the disk (no fsync per
/// publication), and then the torn tail renews the epochs.
///
/// Unchecked `Sendable`: it is only ever used under `TopicHistory`'s lock.
final class HistoryLog: @unchecked Sendable {
    struct OpenError: Error, CustomStringConvertible {
        var path: String
        var reason: String
        /// Another process holds the file.
        var inUse = false
        var description: String { "history file \(path): \(reason)" }
    }

    /// What the file held: the streams and whether its tail had to be cut.
    struct Contents {
        var streams: [String: TopicStream]
        var tornTail: Bool
    }

    private static let epochRecord: UInt8 = 0x01
    private static let publicationRecord: UInt8 = 0x02
    private static let minimumCompactionBytes = 4 << 20

    let path: String
    private var descriptor: Int32
    /// Held (flock) for the life of the log.
    private let lock: Int32
    private var size: Int
    private var compactedSize: Int

    /// Opens (or creates) the file and reads it back; the caller renews epochs on a torn tail,
    /// then hands the streams to `rewrite`.
    static func load(path: String) throws(OpenError) -> (HistoryLog, Contents) {
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        if !directory.isEmpty { _ = mkdir(directory, 0o750) }
        // One gateway per file: a second one appending and compacting beside the first would
        // tear it. The lock is on a file of its own, since compaction replaces the log's.
        let lock = systemOpen(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard lock >= 0 else { throw OpenError(path: path, reason: systemError()) }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            let inUse = errno == EWOULDBLOCK
            let reason = inUse ? "in use by another gateway (\(path).lock is held)" : systemError()
            close(lock)
            throw OpenError(path: path, reason: reason, inUse: inUse)
        }
        let bytes: ByteBuffer
        do {
            bytes = try readFile(path)
        } catch {
            close(lock)
            throw error
        }
        let contents = parse(bytes)
        let descriptor = systemOpen(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else {
            close(lock)
            throw OpenError(path: path, reason: systemError())
        }
        let log = HistoryLog(path: path, descriptor: descriptor, lock: lock, size: bytes.readableBytes)
        return (log, contents)
    }

    private init(path: String, descriptor: Int32, lock: Int32, size: Int) {
        self.path = path
        self.descriptor = descriptor
        self.lock = lock
        self.size = size
        self.compactedSize = size
    }

    deinit {
        close(descriptor)
        close(lock)
    }

    // MARK: Writing

    /// A stream begins (or begins again) at `position`.
    func writeEpoch(topic: String, position: StreamPosition) {
        append(Self.epochBody(topic: topic, position: position))
    }

    func writePublication(topic: String, entry: TopicStream.Entry) {
        append(Self.publicationBody(topic: topic, entry: entry))
    }

    private static func epochBody(topic: String, position: StreamPosition) -> ByteBuffer {
        var body = ByteBuffer()
        body.writeInteger(epochRecord)
        writeString16(topic, to: &body)
        writeString16(position.epoch, to: &body)
        body.writeInteger(position.offset)
        return body
    }

    private static func publicationBody(topic: String, entry: TopicStream.Entry) -> ByteBuffer {
        var body = ByteBuffer()
        body.reserveCapacity(32 + topic.utf8.count + entry.message.data.readableBytes)
        body.writeInteger(publicationRecord)
        writeString16(topic, to: &body)
        body.writeInteger(entry.offset)
        body.writeInteger(entry.time)
        body.writeInteger(flags(of: entry.message))
        body.writeImmutableBuffer(entry.message.data)
        return body
    }

    /// Whether the file has grown enough, past what a rewrite left, to be rewritten.
    var wantsCompaction: Bool {
        size > max(Self.minimumCompactionBytes, compactedSize * 4)
    }

    /// Replaces the file with one that holds only `streams`: written beside it, then renamed.
    func rewrite(_ streams: [String: TopicStream]) throws(OpenError) {
        let temporary = path + ".new"
        let fresh = systemOpen(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard fresh >= 0 else { throw OpenError(path: temporary, reason: systemError()) }
        var file = ByteBuffer()
        for (topic, stream) in streams.sorted(by: { $0.key < $1.key }) {
            let base = (stream.entries.first?.offset ?? stream.last + 1) - 1
            Self.frame(Self.epochBody(topic: topic, position: .init(offset: base, epoch: stream.epoch)), into: &file)
            for entry in stream.entries {
                Self.frame(Self.publicationBody(topic: topic, entry: entry), into: &file)
            }
        }
        let written = Self.writeAll(file, to: fresh)
        let synced = fsync(fresh) == 0
        close(fresh)
        guard written, synced, rename(temporary, path) == 0 else {
            let reason = systemError()
            unlink(temporary)
            throw OpenError(path: path, reason: "rewrite failed: \(reason)")
        }
        let reopened = systemOpen(path, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard reopened >= 0 else { throw OpenError(path: path, reason: systemError()) }
        close(descriptor)
        descriptor = reopened
        size = file.readableBytes
        compactedSize = size
    }

    private func append(_ body: ByteBuffer) {
        var record = ByteBuffer()
        Self.frame(body, into: &record)
        if Self.writeAll(record, to: descriptor) { size += record.readableBytes }
    }

    private static func frame(_ body: ByteBuffer, into file: inout ByteBuffer) {
        file.writeInteger(UInt32(body.readableBytes))
        file.writeInteger(checksum(body.readableBytesView))
        file.writeImmutableBuffer(body)
    }

    private static func writeAll(_ buffer: ByteBuffer, to descriptor: Int32) -> Bool {
        buffer.withUnsafeReadableBytes { raw in
            var done = 0
            while done < raw.count {
                let count = systemWrite(descriptor, raw.baseAddress! + done, raw.count - done)
                if count < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                done += count
            }
            return true
        }
    }

    private static func flags(of message: HubMessage) -> UInt8 {
        (message.kind == .binary ? 1 : 0) | (message.isEvent ? 2 : 0)
    }

    private static func writeString16(_ text: String, to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt16(text.utf8.count))
        buffer.writeString(text)
    }

    /// FNV-1a, 32 bits: enough to tell a torn or overwritten record from a whole one.
    static func checksum<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> UInt32 {
        var hash: UInt32 = 0x811C_9DC5
        for byte in bytes {
            hash ^= UInt32(byte)
            hash = hash &* 0x0100_0193
        }
        return hash
    }

    // MARK: Reading

    private static func readFile(_ path: String) throws(OpenError) -> ByteBuffer {
        let descriptor = systemOpen(path, O_RDONLY | O_CLOEXEC)
        if descriptor < 0 {
            if errno == ENOENT { return ByteBuffer() }
            throw OpenError(path: path, reason: systemError())
        }
        defer { close(descriptor) }
        var buffer = ByteBuffer()
        while true {
            buffer.reserveCapacity(minimumWritableBytes: 1 << 16)
            let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 1 << 16) { raw in
                let count = systemRead(descriptor, raw.baseAddress!, raw.count)
                return max(count, 0)
            }
            if count == 0 { break }
        }
        return buffer
    }

    /// Reads records until the first that is incomplete or does not check out.
    static func parse(_ file: ByteBuffer) -> Contents {
        var file = file
        var streams: [String: TopicStream] = [:]
        while file.readableBytes > 0 {
            guard let length = file.getInteger(at: file.readerIndex, as: UInt32.self),
                let sum = file.getInteger(at: file.readerIndex + 4, as: UInt32.self),
                var body = file.getSlice(at: file.readerIndex + 8, length: Int(length)),
                checksum(body.readableBytesView) == sum,
                apply(&body, to: &streams)
            else {
                return Contents(streams: streams, tornTail: true)
            }
            file.moveReaderIndex(forwardBy: 8 + Int(length))
        }
        return Contents(streams: streams, tornTail: false)
    }

    /// One record's effect; false when it does not make sense (then it and what follows are
    /// treated as a torn tail).
    private static func apply(_ body: inout ByteBuffer, to streams: inout [String: TopicStream]) -> Bool {
        guard let type = body.readInteger(as: UInt8.self), let topic = readString16(&body) else { return false }
        switch type {
        case epochRecord:
            guard let epoch = readString16(&body), let offset = body.readInteger(as: UInt64.self) else { return false }
            streams[topic] = TopicStream(epoch: epoch, last: offset)
            return true
        case publicationRecord:
            guard let offset = body.readInteger(as: UInt64.self), let time = body.readInteger(as: Int64.self),
                let flags = body.readInteger(as: UInt8.self), var stream = streams[topic],
                offset == stream.last + 1
            else { return false }
            let message = HubMessage(
                WebSocketMessage(kind: flags & 1 == 0 ? .text : .binary, data: body),
                form: flags & 2 != 0 ? .event : .raw
            )
            stream.restore(TopicStream.Entry(offset: offset, time: time, message: message))
            streams[topic] = stream
            return true
        default:
            return false
        }
    }

    private static func readString16(_ buffer: inout ByteBuffer) -> String? {
        guard let length = buffer.readInteger(as: UInt16.self) else { return nil }
        return buffer.readString(length: Int(length))
    }
}

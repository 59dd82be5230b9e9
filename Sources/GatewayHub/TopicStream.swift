import GatewayCore
import GatewayWebSocket
import NIOCore

/// One topic's history: its epoch, the offset of its last publication, and the publications
/// still kept, oldest first, bounded by count, age and bytes. A value: `TopicHistory` keeps it
/// under its lock.
struct TopicStream {
    struct Entry {
        var offset: UInt64
        /// Milliseconds since 1970 (it outlives a restart with file storage).
        var time: Int64
        var message: HubMessage
    }

    /// What a resume gets: the publications after the client's position, in order, or
    /// `recovered == false` when they are not all here; `position` is where the stream stands.
    struct Recovery {
        var recovered: Bool
        var missed: [Entry]
        var position: StreamPosition
    }

    private(set) var epoch: String
    private(set) var last: UInt64
    private(set) var entries = CircularBuffer<Entry>()
    private(set) var bytes = 0
    /// When it was begun or last published to (ms since 1970): an empty stream untouched for a
    /// whole `ttl` is forgotten.
    private(set) var touched: Int64

    init(epoch: String, last: UInt64 = 0) {
        self.epoch = epoch
        self.last = last
        self.touched = TopicHistory.now()
    }

    var position: StreamPosition { StreamPosition(offset: last, epoch: epoch) }

    /// Records a publication; returns its offset.
    mutating func append(_ message: HubMessage, time: Int64, settings: HistorySettings) -> UInt64 {
        last += 1
        touched = time
        entries.append(Entry(offset: last, time: time, message: message))
        bytes += message.data.readableBytes
        trim(now: time, settings: settings)
        return last
    }

    /// A publication read back from the history file, in order.
    mutating func restore(_ entry: Entry) {
        last = entry.offset
        touched = entry.time
        entries.append(entry)
        bytes += entry.message.data.readableBytes
    }

    /// Drops what is too old, too many or too big; the newest publication stays within the
    /// byte budget even alone over it, but not past its age.
    mutating func trim(now: Int64, settings: HistorySettings) {
        let oldest = now - settings.ttl.nanoseconds / 1_000_000
        while let first = entries.first,
            entries.count > settings.size || (entries.count > 1 && bytes > settings.maxBytes) || first.time < oldest
        {
            bytes -= first.message.data.readableBytes
            entries.removeFirst()
        }
    }

    /// The publications after `since`, if the history still holds every one of them.
    mutating func recover(since: StreamPosition, now: Int64, settings: HistorySettings) -> Recovery {
        trim(now: now, settings: settings)
        guard since.epoch == epoch, since.offset <= last else {
            return Recovery(recovered: false, missed: [], position: position)
        }
        if since.offset == last { return Recovery(recovered: true, missed: [], position: position) }
        // The next one the client needs must still be here.
        guard let first = entries.first, first.offset <= since.offset + 1 else {
            return Recovery(recovered: false, missed: [], position: position)
        }
        let skip = Int(since.offset + 1 - first.offset)
        return Recovery(recovered: true, missed: Array(entries.dropFirst(skip)), position: position)
    }

    /// Starts a new epoch at the same offset (what was kept can no longer be trusted).
    mutating func renew(epoch: String) {
        self.epoch = epoch
        entries.removeAll()
        bytes = 0
    }
}

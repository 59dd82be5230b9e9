import GatewayCore
import GatewayHub
import GatewayWebSocket
import NIOCore
import RedisClient

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Topic history shared by every node of a cluster, in Redis (docs/cluster.md, History): per
/// topic a stream (`<prefix>:history:<topic>`, entry ids `<offset>-0`, trimmed with `MAXLEN ~`),
/// its epoch (`…:epoch`) and its last offset (`…:offset`).
///
/// A publish runs one script that takes the next offset, appends the entry and publishes it on
/// the topic's channel with its offset and epoch; every node, the publisher's included, delivers
/// it from there, so every node sees a topic's publications in offset order. A resume runs one
/// script that reads the epoch, the last offset and the entries after the client's position; it
/// travels on the same connection as the published entries, so its answer comes after every
/// entry recorded before it (the connection's seam). Redis losing the keys (a restart without
/// persistence) begins a new epoch: resuming clients are told they could not be recovered.
extension ClusterNode: RemoteHistory {
    /// KEYS: stream, epoch, offset, channel. ARGV: a new epoch (used if there is none), MAXLEN,
    /// the stream's expiry (ms), now (ms), kind (1 text, 2 binary, 3 hub event), payload, the
    /// epoch's expiry (ms).
    static let appendScript = """
        local epoch = redis.call('GET', KEYS[2])
        if not epoch then
          epoch = ARGV[1]
          redis.call('SET', KEYS[2], epoch)
          redis.call('DEL', KEYS[1], KEYS[3])
        end
        local offset = redis.call('INCR', KEYS[3])
        redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], offset .. '-0', 't', ARGV[4], 'k', ARGV[5], 'p', ARGV[6])
        redis.call('PEXPIRE', KEYS[1], ARGV[3])
        redis.call('PEXPIRE', KEYS[2], ARGV[7])
        redis.call('PEXPIRE', KEYS[3], ARGV[7])
        redis.call('PUBLISH', KEYS[4], 'H' .. ARGV[5] .. offset .. ':' .. epoch .. ':' .. ARGV[6])
        return {epoch, offset}
        """

    /// KEYS: stream, epoch, offset. ARGV: a new epoch, the epoch's expiry (ms), mode (`since`,
    /// `position` or `kept`), the client's offset and epoch, how many entries at most.
    static let recoverScript = """
        local epoch = redis.call('GET', KEYS[2])
        if not epoch then
          epoch = ARGV[1]
          redis.call('SET', KEYS[2], epoch, 'PX', ARGV[2])
          redis.call('DEL', KEYS[1], KEYS[3])
        end
        local last = tonumber(redis.call('GET', KEYS[3]) or '0')
        local entries = {}
        if ARGV[3] == 'kept' then
          entries = redis.call('XRANGE', KEYS[1], '-', '+')
        elseif ARGV[3] == 'since' and ARGV[5] == epoch and tonumber(ARGV[4]) < last then
          entries = redis.call('XRANGE', KEYS[1], (tonumber(ARGV[4]) + 1) .. '-0', '+', 'COUNT', ARGV[6])
        end
        return {epoch, tostring(last), entries}
        """

    func historyKeys(_ topic: String) -> [String] {
        let base = "\(settings.prefix):history:\(topic)"
        return [base, base + ":epoch", base + ":offset"]
    }

    /// How long an epoch outlives its topic's last publication: a client that comes back after
    /// a quiet hour still resumes (with nothing missed) rather than hearing its epoch is gone.
    private static func epochLifetime(_ settings: HistorySettings) -> Int64 {
        max(settings.ttl.nanoseconds / 1_000_000, 24 * 3600 * 1000)
    }

    public func append(
        _ message: HubMessage,
        to topic: String,
        settings history: HistorySettings
    ) -> EventLoopFuture<StreamPosition> {
        let keys = historyKeys(topic)
        let kind = message.isEvent ? "3" : message.kind == .text ? "1" : "2"
        let arguments: [ByteBuffer] =
            [
                "EVAL", Self.appendScript, "4", keys[0], keys[1], keys[2], "\(settings.prefix):topic:\(topic)",
                StreamPosition.newEpoch(), String(history.size),
                String(history.ttl.nanoseconds / 1_000_000), String(Int64(Date().timeIntervalSince1970 * 1000)), kind,
            ].map { ByteBuffer(string: $0) } + [message.data, ByteBuffer(string: String(Self.epochLifetime(history)))]
        let appended = run(arguments) { reply throws(ClusterError) in
            guard case .array(let parts) = reply, parts.count == 2, let epoch = parts[0].string,
                let offset = parts[1].integer, offset > 0
            else { throw ClusterError(.linkDown, "an unexpected answer from Redis to a history append") }
            return StreamPosition(offset: UInt64(offset), epoch: epoch)
        }
        // Sent, but no answer (a timeout, the link gone meanwhile): Redis may have run it.
        guard connection != nil else { return appended }
        return appended.flatMapErrorThrowing { error in
            throw UndecidedAppend("Redis did not answer (\(error)): the publication may have been recorded")
        }
    }

    public func recover(
        _ topic: String,
        since: StreamPosition?,
        settings history: HistorySettings
    ) -> EventLoopFuture<HistoryRecovery> {
        read(topic, mode: since == nil ? "position" : "since", since: since, settings: history)
    }

    public func kept(_ topic: String, settings history: HistorySettings) -> EventLoopFuture<HistoryRecovery> {
        read(topic, mode: "kept", since: nil, settings: history)
    }

    private func read(
        _ topic: String,
        mode: String,
        since: StreamPosition?,
        settings history: HistorySettings
    ) -> EventLoopFuture<HistoryRecovery> {
        let keys = historyKeys(topic)
        let arguments = [
            "EVAL", Self.recoverScript, "3", keys[0], keys[1], keys[2], StreamPosition.newEpoch(),
            String(Self.epochLifetime(history)), mode, String(since?.offset ?? 0), since?.epoch ?? "",
            String(history.size + 1),
        ].map { ByteBuffer(string: $0) }
        return run(arguments) { reply throws(ClusterError) in
            guard case .array(let parts) = reply, parts.count == 3, let epoch = parts[0].string,
                let lastText = parts[1].string, let last = UInt64(lastText), case .array(let items) = parts[2]
            else { throw ClusterError(.linkDown, "an unexpected answer from Redis to a history read") }
            let position = StreamPosition(offset: last, epoch: epoch)
            if mode != "kept" { self.following(topic, from: position) }
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            let entries = Self.entries(items, now: now, settings: history)
            switch mode {
            case "kept":
                return HistoryRecovery(
                    recovered: nil,
                    entries: Self.bounded(entries, settings: history),
                    position: position
                )
            case "since":
                guard let since, since.epoch == epoch, since.offset <= last else {
                    return HistoryRecovery(recovered: false, entries: [], position: position)
                }
                // Every one after `since`, contiguous up to the last, within the bounds.
                let bounded = Self.bounded(entries, settings: history)
                let complete =
                    since.offset == last
                    || (bounded.first?.offset == since.offset + 1 && bounded.last?.offset == last
                        && UInt64(bounded.count) == last - since.offset)
                return HistoryRecovery(
                    recovered: complete,
                    entries: complete ? bounded.filter { $0.offset > since.offset } : [],
                    position: position
                )
            default:
                return HistoryRecovery(recovered: nil, entries: [], position: position)
            }
        }
    }

    /// The stream's entries as publications, those older than the history's `ttl` left out.
    private static func entries(_ items: [RESPValue], now: Int64, settings: HistorySettings) -> [HistoryEntry] {
        entries(items, recordedSince: now - settings.ttl.nanoseconds / 1_000_000)
    }

    /// The stream's entries (an `XRANGE` reply) recorded at `oldest` (ms) or later.
    static func entries(_ items: [RESPValue], recordedSince oldest: Int64) -> [HistoryEntry] {
        items.compactMap { item -> HistoryEntry? in
            guard case .array(let pair) = item, pair.count == 2, let id = pair[0].string,
                let offset = UInt64(id.split(separator: "-").first ?? ""), case .array(let fields) = pair[1]
            else { return nil }
            var values: [String: RESPValue] = [:]
            var index = 0
            while index + 1 < fields.count {
                if let name = fields[index].string { values[name] = fields[index + 1] }
                index += 2
            }
            guard let time = values["t"]?.integer, time >= oldest, let kind = values["k"]?.string,
                let payload = values["p"]?.bytes
            else { return nil }
            let message = HubMessage(
                WebSocketMessage(kind: kind == "2" ? .binary : .text, data: payload),
                form: kind == "3" ? .event : .raw
            )
            return HistoryEntry(offset: offset, message: message)
        }
    }

    /// The newest entries within `size` and `max_bytes` (the newest always), as a node's own
    /// history keeps them.
    private static func bounded(_ entries: [HistoryEntry], settings: HistorySettings) -> [HistoryEntry] {
        var kept: [HistoryEntry] = []
        var bytes = 0
        for entry in entries.reversed() {
            bytes += entry.message.data.readableBytes
            if !kept.isEmpty && (kept.count >= settings.size || bytes > settings.maxBytes) { break }
            kept.append(entry)
        }
        return kept.reversed()
    }

    /// Runs one command on the link and reads its reply on the link's loop.
    private func run<Value: Sendable>(
        _ arguments: [ByteBuffer],
        _ parse: @escaping @Sendable (RESPValue) throws(ClusterError) -> Value
    ) -> EventLoopFuture<Value> {
        let promise = loop.makePromise(of: Value.self)
        guard let connection else {
            promise.fail(ClusterError(.linkDown, "the cluster link to Redis is down: no history"))
            return promise.futureResult
        }
        connection.sendWithoutWaiting(arguments) { result in
            switch result {
            case .success(let reply):
                do { promise.succeed(try parse(reply)) } catch { promise.fail(error) }
            case .failure(let error):
                promise.fail(
                    error.code == .timeout ? ClusterError(.timeout, "\(error)") : ClusterError(.linkDown, "\(error)")
                )
            }
        }
        return promise.futureResult
    }

    /// A publication the shared history recorded, from the topic's channel: `H`, kind, offset,
    /// `:`, epoch, `:`, payload.
    static func decodeRecorded(_ buffer: ByteBuffer) -> (offset: UInt64, epoch: String, message: HubMessage)? {
        var buffer = buffer
        guard buffer.readInteger(as: UInt8.self) == UInt8(ascii: "H"), let kind = buffer.readInteger(as: UInt8.self),
            (UInt8(ascii: "1")...UInt8(ascii: "3")).contains(kind),
            let colon = buffer.readableBytesView.firstIndex(of: UInt8(ascii: ":")),
            let offsetText = buffer.readString(length: colon - buffer.readerIndex), let offset = UInt64(offsetText)
        else { return nil }
        buffer.moveReaderIndex(forwardBy: 1)
        guard let next = buffer.readableBytesView.firstIndex(of: UInt8(ascii: ":")),
            let epoch = buffer.readString(length: next - buffer.readerIndex)
        else { return nil }
        buffer.moveReaderIndex(forwardBy: 1)
        let message = HubMessage(
            WebSocketMessage(kind: kind == UInt8(ascii: "2") ? .binary : .text, data: buffer),
            form: kind == UInt8(ascii: "3") ? .event : .raw
        )
        return (offset, epoch, message)
    }
}

import GatewayCore
import GatewayWebSocket
import NIOConcurrencyHelpers
import NIOCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One hub route's topic history (`hub.history`): a stream per topic it covers, kept in memory
/// and, with `storage: file`, in the route's history file (`HistoryLog`).
///
/// Everything happens under one lock, and `record` delivers while holding it: offsets are
/// handed out, written down and enqueued to subscribers in one order, so that every subscriber
/// sees a topic's publications in offset order and a resume finds each of them either in the
/// history or among the live ones (the subscriber drops what it has already seen).
public final class TopicHistory: Sendable {
    private struct State {
        var streams: [String: TopicStream] = [:]
        var log: HistoryLog?
        var recordsSinceSweep = 0
    }

    public let route: String
    public let settings: HistorySettings
    private let state: NIOLockedValueBox<State>
    private let remoteBox = NIOLockedValueBox<(any RemoteHistory)?>(nil)

    /// In a cluster the history lives in Redis, shared by every node, and nothing is kept here.
    public func keep(in remote: any RemoteHistory) {
        remoteBox.withLockedValue { $0 = remote }
    }

    public var remote: (any RemoteHistory)? { remoteBox.withLockedValue { $0 } }

    /// Reads the route's history file back with `storage: file` (the epochs of every topic
    /// renewed when its tail was torn) and rewrites it compactly.
    public init(route: String, settings: HistorySettings, environment: [String: String]) throws {
        self.route = route
        self.settings = settings
        var state = State()
        if settings.storage == .file {
            let path = settings.resolvedDirectory(environment: environment) + "/" + route + ".history"
            let (log, contents) = try HistoryLog.load(path: path)
            var streams = contents.streams
            let now = Self.now()
            for topic in streams.keys {
                if contents.tornTail { streams[topic]!.renew(epoch: StreamPosition.newEpoch()) }
                streams[topic]!.trim(now: now, settings: settings)
            }
            state.streams = streams
            Self.evictOverLimit(&state, maxTopics: settings.maxTopics)
            try log.rewrite(state.streams)
            state.log = log
        }
        self.state = NIOLockedValueBox(state)
    }

    /// Topics whose stream is kept now (at most `max_topics`).
    public var topicCount: Int { state.withLockedValue { $0.streams.count } }

    /// Where the history file is, with `storage: file`.
    public var path: String? { state.withLockedValue { $0.log?.path } }

    /// Milliseconds since 1970.
    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// Records `message` on `topic` and, still under the lock, lets `deliver` hand it out with
    /// its offset; returns the publication's position and what `deliver` returned.
    func record<Result>(
        _ message: HubMessage,
        on topic: String,
        deliver: (UInt64) -> Result
    ) -> (StreamPosition, Result) {
        state.withLockedValue { state in
            let now = Self.now()
            var stream = stream(topic, in: &state)
            let offset = stream.append(message, time: now, settings: settings)
            state.log?.writePublication(topic: topic, entry: stream.entries.last!)
            let position = stream.position
            state.streams[topic] = stream
            let result = deliver(offset)
            state.recordsSinceSweep += 1
            if state.recordsSinceSweep >= 4096 { sweep(&state, now: now) }
            return (position, result)
        }
    }

    /// Where `topic` stands now.
    public func position(of topic: String) -> StreamPosition {
        state.withLockedValue { state in
            let stream = stream(topic, in: &state)
            return stream.position
        }
    }

    /// The publications on `topic` after `since`, or `recovered == false` when the history does
    /// not hold all of them (or `since` is of another epoch).
    func recover(_ topic: String, since: StreamPosition) -> TopicStream.Recovery {
        state.withLockedValue { state in
            var stream = stream(topic, in: &state)
            let recovery = stream.recover(since: since, now: Self.now(), settings: settings)
            state.streams[topic] = stream
            return recovery
        }
    }

    /// Where `topic` stands and, with `since`, the publications after it (or `recovered:
    /// false`): from here, or from the cluster's shared history.
    public func recover(
        _ topic: String,
        since: StreamPosition?,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<HistoryRecovery> {
        if let remote { return remote.recover(topic, since: since, settings: settings) }
        guard let since else {
            return eventLoop.makeSucceededFuture(
                HistoryRecovery(recovered: nil, entries: [], position: position(of: topic))
            )
        }
        let recovery = recover(topic, since: since)
        return eventLoop.makeSucceededFuture(
            HistoryRecovery(
                recovered: recovery.recovered,
                entries: recovery.missed.map { HistoryEntry(offset: $0.offset, message: $0.message) },
                position: recovery.position
            )
        )
    }

    /// A topic's kept publications as hub clients get them (`message` events with offsets):
    /// all of them, or those after `since` (then `recovered` says whether that is every one).
    public struct Replay: Sendable {
        public var position: StreamPosition
        public var recovered: Bool?
        public var events: [ByteBuffer]
    }

    public func replay(_ topic: String, since: StreamPosition?, on eventLoop: any EventLoop) -> EventLoopFuture<Replay>
    {
        let everything: EventLoopFuture<HistoryRecovery>
        if let since {
            everything = recover(topic, since: since, on: eventLoop)
        } else if let remote {
            everything = remote.kept(topic, settings: settings)
        } else {
            everything = eventLoop.makeSucceededFuture(local(topic))
        }
        return everything.map { recovery in
            Replay(
                position: recovery.position,
                recovered: since == nil ? nil : recovery.recovered,
                events: recovery.entries.map {
                    HubRouteService.event(for: $0.message, topic: topic, offset: $0.offset).data
                }
            )
        }
    }

    /// Everything kept here for `topic`.
    private func local(_ topic: String) -> HistoryRecovery {
        state.withLockedValue { state in
            var stream = stream(topic, in: &state)
            stream.trim(now: Self.now(), settings: settings)
            state.streams[topic] = stream
            return HistoryRecovery(
                recovered: nil,
                entries: stream.entries.map { HistoryEntry(offset: $0.offset, message: $0.message) },
                position: stream.position
            )
        }
    }

    /// The stream of `topic`, begun (on a new epoch, written down) if it has none. Beginning one
    /// counts like a publication towards the next sweep, and past `max_topics` the least
    /// recently used are forgotten: a client subscribing to ever new topics cannot make the
    /// history keep them all.
    private func stream(_ topic: String, in state: inout State) -> TopicStream {
        if let stream = state.streams[topic] { return stream }
        let stream = TopicStream(epoch: StreamPosition.newEpoch())
        state.streams[topic] = stream
        state.log?.writeEpoch(topic: topic, position: stream.position)
        state.recordsSinceSweep += 1
        if state.recordsSinceSweep >= 4096 || state.streams.count > settings.maxTopics {
            sweep(&state, now: Self.now())
        }
        return stream
    }

    /// Past `max_topics`, forgets streams down to nine tenths of it — those holding nothing
    /// first, then the least recently used — in one sort, so a flood of new topics costs a sort
    /// per tenth of the limit, not a scan per topic.
    private static func evictOverLimit(_ state: inout State, maxTopics: Int) {
        guard state.streams.count > maxTopics else { return }
        let keep = max(1, maxTopics * 9 / 10)
        // Streams that hold nothing go first (a subscribe's, a drained topic's), then the oldest.
        let byAge = state.streams.sorted {
            ($0.value.entries.isEmpty ? 0 : 1, $0.value.touched) < ($1.value.entries.isEmpty ? 0 : 1, $1.value.touched)
        }
        for (topic, _) in byAge.prefix(state.streams.count - keep) { state.streams[topic] = nil }
    }

    /// Trims every stream; forgets those that have held nothing for a whole `ttl` (a client
    /// that resumes on one then gets `recovered: false`, which is true: its stream is gone);
    /// rewrites the file when it has grown.
    private func sweep(_ state: inout State, now: Int64) {
        state.recordsSinceSweep = 0
        let ttl = settings.ttl.nanoseconds / 1_000_000
        for topic in Array(state.streams.keys) {
            state.streams[topic]!.trim(now: now, settings: settings)
            if state.streams[topic]!.entries.isEmpty, now - state.streams[topic]!.touched > ttl {
                state.streams[topic] = nil
            }
        }
        Self.evictOverLimit(&state, maxTopics: settings.maxTopics)
        if let log = state.log, log.wantsCompaction {
            // A failed rewrite leaves the old file, which still holds everything: go on appending.
            try? log.rewrite(state.streams)
        }
    }
}

import GatewayCore
import NIOConcurrencyHelpers
import NIOCore
import NIOWebSocket

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Every open WebSocket connection of the gateway, by id, for the admin API: what it is, and a
/// way to reach it on its own event loop.
///
/// Proxied connections are listed too; the gateway passes their bytes through, so it can close
/// them but cannot send on them.
public final class SessionDirectory: Sendable {
    /// A class, not a struct: the directory's table holds one pointer per connection instead of
    /// the entry's ~190 bytes in every slot (its slots are a quarter to a half empty), and the
    /// close callback captures that pointer rather than a copy.
    public final class Entry: Sendable {
        public let id: UInt64
        public let route: String
        public let kind: String
        public let peer: String
        /// Wall-clock time of the upgrade, in milliseconds since 1970.
        public let openedAtMillis: Int64
        public let subprotocol: String?
        public let compression: Bool
        public let channel: any Channel
        /// Absent for proxied connections.
        let session: NIOLoopBound<WebSocketSessionHandler>?

        public var isProxied: Bool { session == nil }

        init(
            id: UInt64,
            route: String,
            kind: String,
            peer: String,
            openedAtMillis: Int64,
            subprotocol: String?,
            compression: Bool,
            channel: any Channel,
            session: NIOLoopBound<WebSocketSessionHandler>?
        ) {
            self.id = id
            self.route = route
            self.kind = kind
            self.peer = peer
            self.openedAtMillis = openedAtMillis
            self.subprotocol = subprotocol
            self.compression = compression
            self.channel = channel
            self.session = session
        }
    }

    /// What a session looked like at one moment, read on its event loop.
    public struct Snapshot: Sendable {
        public var statistics: SessionStatistics
        public var backlogMessages: Int
        public var backlogBytes: Int
        public var isOpen: Bool
    }

    /// Why a message could not be sent to a connection.
    public enum SendOutcome: Sendable, Equatable {
        case queued
        /// The session is closing or closed.
        case closed
        /// The session's send queue was full and its policy closed it.
        case overflowed
        /// A proxied connection: the gateway does not speak on it.
        case proxied
    }

    /// Who a connection belongs to: a user id (a token's `sub`, or set by the route's
    /// backend) and tags. Kept beside the entries, only for connections that have one, so a
    /// connection without costs nothing.
    public struct Identity: Sendable, Equatable {
        public var user: String?
        public var tags: Set<String>
        public init(user: String? = nil, tags: Set<String> = []) {
            self.user = user
            self.tags = tags
        }
        public var isEmpty: Bool { user == nil && tags.isEmpty }

        /// Whether a user id or tag can be carried: 1–255 bytes, no control characters.
        public static func isValidName(_ name: String) -> Bool {
            !name.isEmpty && name.utf8.count <= 255 && NameCharacters.areAllowed(in: name)
        }
    }

    /// Learns identity changes (the hub's `$user:` and `$tag:` topics follow them); called
    /// outside the directory's lock, on the thread that made the change.
    public typealias IdentityObserver = @Sendable (Entry, _ before: Identity, _ after: Identity) -> Void

    private struct Table {
        var entries: [UInt64: Entry] = [:]
        var identities: [UInt64: Identity] = [:]
        var byUser: [String: Set<UInt64>] = [:]
        var byTag: [String: Set<UInt64>] = [:]

        mutating func setIdentity(_ identity: Identity, of id: UInt64) -> Identity {
            let before = identities[id] ?? Identity()
            if let user = before.user { Self.remove(id, from: user, in: &byUser) }
            for tag in before.tags { Self.remove(id, from: tag, in: &byTag) }
            if identity.isEmpty { identities[id] = nil } else { identities[id] = identity }
            if let user = identity.user { byUser[user, default: []].insert(id) }
            for tag in identity.tags { byTag[tag, default: []].insert(id) }
            return before
        }

        private static func remove(_ id: UInt64, from key: String, in index: inout [String: Set<UInt64>]) {
            index[key]?.remove(id)
            if index[key]?.isEmpty == true { index[key] = nil }
        }
    }

    public let ids: ConnectionIDs
    private let table = NIOLockedValueBox(Table())
    private let identityObserver = NIOLockedValueBox<IdentityObserver?>(nil)

    /// `idBase`: the cluster node's number in the ids' top bits (0 outside a cluster).
    public init(idBase: UInt64 = 0) {
        ids = ConnectionIDs(base: idBase)
    }

    /// Adds a terminated session; it is removed when its channel closes.
    public func register(
        id: UInt64,
        route: String,
        kind: String,
        session: WebSocketSessionHandler,
        channel: any Channel,
        subprotocol: String?,
        compression: Bool,
        user: String? = nil
    ) {
        let entry = add(
            Entry(
                id: id,
                route: route,
                kind: kind,
                peer: session.peer,
                openedAtMillis: Self.now(),
                subprotocol: subprotocol,
                compression: compression,
                channel: channel,
                session: NIOLoopBound(session, eventLoop: channel.eventLoop)
            )
        )
        if let user { setIdentity(of: entry) { $0.user = user } }
    }

    /// Adds a proxied connection; it is removed when its channel closes. With a user (a token's
    /// `sub`) it counts in the user's presence and closes with the user's connections; the
    /// gateway does not speak on it, so sends to the user pass it by.
    public func registerProxied(id: UInt64, route: String, peer: String, channel: any Channel, user: String? = nil) {
        let entry = add(
            Entry(
                id: id,
                route: route,
                kind: "proxy",
                peer: peer,
                openedAtMillis: Self.now(),
                subprotocol: nil,
                compression: false,
                channel: channel,
                session: nil
            )
        )
        if let user { setIdentity(of: entry) { $0.user = user } }
    }

    private func add(_ entry: Entry) -> Entry {
        table.withLockedValue { $0.entries[entry.id] = entry }
        let id = entry.id
        entry.channel.closeFuture.whenComplete { [self] _ in
            let before = table.withLockedValue { table -> Identity? in
                table.entries.removeValue(forKey: id)
                guard table.identities[id] != nil else { return nil }
                return table.setIdentity(Identity(), of: id)
            }
            if let before, let observer = identityObserver.withLockedValue({ $0 }) {
                observer(entry, before, Identity())
            }
        }
        return entry
    }

    /// Set once, before traffic.
    public func setIdentityObserver(_ observer: IdentityObserver?) {
        identityObserver.withLockedValue { $0 = observer }
    }

    /// Changes a connection's user or tags; false when it is not (or no longer) listed.
    @discardableResult
    public func setIdentity(of entry: Entry, _ change: (inout Identity) -> Void) -> Bool {
        let changed = table.withLockedValue { table -> (Identity, Identity)? in
            guard table.entries[entry.id] != nil else { return nil }
            var identity = table.identities[entry.id] ?? Identity()
            change(&identity)
            let before = table.setIdentity(identity, of: entry.id)
            return before == identity ? nil : (before, identity)
        }
        guard let (before, after) = changed else { return table.withLockedValue { $0.entries[entry.id] != nil } }
        identityObserver.withLockedValue { $0 }?(entry, before, after)
        return true
    }

    public func identity(of id: UInt64) -> Identity {
        table.withLockedValue { $0.identities[id] ?? Identity() }
    }

    /// The connection's identity, or nil when it is not (or no longer) listed: one look, for
    /// callers on a per-message path.
    public func listedIdentity(of id: UInt64) -> Identity? {
        table.withLockedValue { table in
            table.entries[id] == nil ? nil : (table.identities[id] ?? Identity())
        }
    }

    /// This node's connections of a user, in id order.
    public func entries(ofUser user: String) -> [Entry] {
        table.withLockedValue { table in
            (table.byUser[user] ?? []).sorted().compactMap { table.entries[$0] }
        }
    }

    /// This node's connections with a tag, in id order.
    public func entries(withTag tag: String) -> [Entry] {
        table.withLockedValue { table in
            (table.byTag[tag] ?? []).sorted().compactMap { table.entries[$0] }
        }
    }

    /// Drains the connections of these routes as a shutdown would (1001 within the drain
    /// spread, reason `drain`; proxied ones too); returns how many were told.
    @discardableResult
    public func quiesce(routes: Set<String>) -> Int {
        let channels = table.withLockedValue {
            $0.entries.values.filter { routes.contains($0.route) }.map(\.channel)
        }
        for channel in channels {
            channel.eventLoop.execute { channel.pipeline.fireUserInboundEventTriggered(DrainEvent(reason: .drain)) }
        }
        return channels.count
    }

    public func entry(_ id: UInt64) -> Entry? {
        table.withLockedValue { $0.entries[id] }
    }

    public var count: Int { table.withLockedValue { $0.entries.count } }

    /// Open connections per route name.
    public func countsByRoute() -> [String: Int] {
        table.withLockedValue { table in
            var counts: [String: Int] = [:]
            for entry in table.entries.values { counts[entry.route, default: 0] += 1 }
            return counts
        }
    }

    /// Entries in id order (oldest first) with ids above `after`, at most `limit`, that pass
    /// `filter`; and whether more follow.
    public func page(after: UInt64, limit: Int, filter: (Entry) -> Bool) -> (entries: [Entry], more: Bool) {
        let all = table.withLockedValue { Array($0.entries.values) }
        var matching = all.filter { $0.id > after && filter($0) }
        matching.sort { $0.id < $1.id }
        return (Array(matching.prefix(limit)), matching.count > limit)
    }

    /// Sends a pushed message on the connection's event loop, under its overflow policy, in the
    /// form the connection's route gives messages addressed to it (`addressedMessage`).
    public func send(_ message: WebSocketMessage, to entry: Entry) -> EventLoopFuture<SendOutcome> {
        guard let session = entry.session else { return entry.channel.eventLoop.makeSucceededFuture(.proxied) }
        return entry.channel.eventLoop.submit {
            let session = session.value
            guard session.isOpen else { return .closed }
            return session.sendUnlessFull(session.application.addressedMessage(message)) ? .queued : .overflowed
        }
    }

    /// Starts the closing handshake with `code` (a proxied connection is simply dropped).
    public func close(_ entry: Entry, code: WebSocketErrorCode, reason: String) -> EventLoopFuture<Void> {
        guard let session = entry.session else { return entry.channel.close() }
        return entry.channel.eventLoop.submit {
            session.value.close(code: code, reason: reason)
        }
    }

    /// The session's counters, read on its event loop (nil for a proxied connection).
    public func snapshot(of entry: Entry) -> EventLoopFuture<Snapshot?> {
        guard let session = entry.session else { return entry.channel.eventLoop.makeSucceededFuture(nil) }
        return entry.channel.eventLoop.submit {
            let session = session.value
            let backlog = session.backlogSize
            return Snapshot(
                statistics: session.statistics,
                backlogMessages: backlog.messages,
                backlogBytes: backlog.bytes,
                isOpen: session.isOpen
            )
        }
    }

    private static func now() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }
}

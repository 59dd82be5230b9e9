import GatewayWebSocket
import NIOConcurrencyHelpers
import NIOCore

/// Every open client connection of every listener, with the listener it came from: a drain
/// tells each one to quiesce and waits for the last to close, a listener taken away by a reload
/// drains its own, and a drain that runs out of time closes what is left.
///
/// The gateway keeps this itself rather than one `ServerQuiescingHelper` per server: that helper
/// follows a single server channel, and shared by several listeners it drained only one of them.
final class ConnectionRegistry: Sendable {
    private struct Entry {
        var channel: any Channel
        var listener: UInt64
    }

    private struct State {
        var entries: [ObjectIdentifier: Entry] = [:]
        /// Waiting for the registry to become empty.
        var whenEmpty: [EventLoopPromise<Void>] = []
    }

    private let state = NIOLockedValueBox(State())

    func add(_ channel: any Channel, listener: UInt64) {
        let id = ObjectIdentifier(channel)
        state.withLockedValue { $0.entries[id] = Entry(channel: channel, listener: listener) }
        channel.closeFuture.whenComplete { [self] _ in
            let waiting = self.state.withLockedValue { state -> [EventLoopPromise<Void>] in
                state.entries.removeValue(forKey: id)
                guard state.entries.isEmpty else { return [] }
                defer { state.whenEmpty = [] }
                return state.whenEmpty
            }
            for promise in waiting { promise.succeed() }
        }
    }

    var count: Int { state.withLockedValue { $0.entries.count } }

    /// Tells every connection (of one listener, or all) that the gateway is going away: idle HTTP
    /// connections close, sessions and proxied connections close with 1001 within the spread.
    func quiesce(listener: UInt64? = nil) {
        let channels = state.withLockedValue { state in
            state.entries.values.filter { listener == nil || $0.listener == listener }.map(\.channel)
        }
        for channel in channels {
            channel.eventLoop.execute {
                // A listener a reload removed: its sessions' 1001 says `drain`, not `restart`.
                if listener != nil { channel.pipeline.fireUserInboundEventTriggered(DrainEvent(reason: .drain)) }
                channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
            }
        }
    }

    /// Completes once no connection is open (at once when none is).
    func empty(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        let now = state.withLockedValue { state -> Bool in
            if state.entries.isEmpty { return true }
            state.whenEmpty.append(promise)
            return false
        }
        if now { promise.succeed() }
        return promise.futureResult
    }

    func closeAll() {
        for channel in state.withLockedValue({ $0.entries.values.map(\.channel) }) {
            channel.close(promise: nil)
        }
    }
}

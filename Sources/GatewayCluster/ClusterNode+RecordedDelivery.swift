import GatewayHub
import GatewayWebSocket
import Logging
import NIOConcurrencyHelpers
import NIOCore
import RedisClient

/// The driver of `RecordedDelivery`: entries from the topic channels go through it to the hub,
/// and what it asks to read comes from the topic's stream on the same link.
extension ClusterNode {
    /// An entry the shared history recorded, from its topic's channel.
    func recordedArrived(_ message: HubMessage, offset: UInt64, epoch: String, on topic: String) {
        let entry = HistoryEntry(offset: offset, message: message)
        guard let action = recorded.withLockedValue({ $0.arrived(entry, epoch: epoch, on: topic) }) else { return }
        perform([action])
    }

    /// A local subscriber's resume put it at `position` on `topic`.
    func following(_ topic: String, from position: StreamPosition) {
        recorded.withLockedValue { $0.subscribed(to: topic, epoch: position.epoch, offset: position.offset) }
    }

    /// The link is back: what each followed topic missed meanwhile is read.
    func catchUpAfterRelink() {
        perform(recorded.withLockedValue { $0.relinked() })
    }

    private func perform(_ actions: [RecordedDelivery.Action]) {
        for action in actions {
            switch action {
            case .deliver(let topic, let entries):
                var reached = 0
                for entry in entries {
                    reached = hub.deliverRecorded(entry.message, to: topic, offset: entry.offset)
                }
                if reached == 0 { recorded.withLockedValue { $0.forget(topic) } }
            case .fetch(let topic, let after, let through):
                fetch(topic, after: after, through: through)
            case .lose(let topic):
                logger.warning(
                    "cluster: publications missed while the link was away are no longer in the history",
                    metadata: ["topic": .string(topic)]
                )
                hub.closeSubscribersLocally(of: topic, code: 1012, reason: "history gap: resume", anyTopic: true)
            }
        }
    }

    /// Reads the entries the topic missed. Without a link (an entry that came while the new link
    /// is being set up, or one going away) the topic waits: the relink reads for every topic
    /// that waits.
    private func fetch(_ topic: String, after: UInt64, through: UInt64?) {
        guard let connection else { return }
        let arguments = [
            "XRANGE", historyKeys(topic)[0], "\(after + 1)-0", through.map { "\($0)-0" } ?? "+",
        ].map { ByteBuffer(string: $0) }
        connection.sendWithoutWaiting(arguments) { [weak self] result in
            guard let self else { return }
            guard case .success(let reply) = result, case .array(let items) = reply else {
                // A link that went meanwhile reads again when it is back; a live one that cannot
                // answer leaves the topic's subscribers to resume.
                if connection.isActive {
                    self.perform([self.recorded.withLockedValue { $0.fetchFailed(on: topic) }])
                }
                return
            }
            let entries = Self.entries(items, recordedSince: 0)
            self.perform(self.recorded.withLockedValue { $0.fetched(entries, on: topic) })
        }
    }
}

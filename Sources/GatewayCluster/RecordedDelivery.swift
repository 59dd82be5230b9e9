import GatewayHub

/// Publications the shared history recorded, as this node delivers them to its subscribers: in
/// offset order, each once, none left out. Redis pub/sub does not store what it publishes: while
/// the link is down, or in the moment it is replaced, the entries published meanwhile never
/// reach this node, though they are in the history. So the node follows, per topic it delivers,
/// the last offset it delivered; an entry past the next one, or a link that comes back, makes it
/// read what it missed from the stream (`fetch`) before it delivers anything newer, and a gap
/// the stream no longer holds closes the topic's subscribers here (`lose`), so that they resume
/// and hear from the history what it could not give back.
///
/// A value: the node runs the actions, on its link's event loop.
struct RecordedDelivery {
    typealias Entry = HistoryEntry

    enum Action {
        case deliver(topic: String, [Entry])
        /// Read the entries after `after`, up to `through` (nil: all there are).
        case fetch(topic: String, after: UInt64, through: UInt64?)
        case lose(topic: String)
    }

    private enum Topic {
        case delivering(epoch: String, last: UInt64)
        /// Reading what was missed; what arrives meanwhile waits.
        case filling(epoch: String, last: UInt64, through: UInt64?, waiting: [Entry])
    }

    private var topics: [String: Topic] = [:]

    var followed: Int { topics.count }

    /// An entry published on `topic`'s channel.
    mutating func arrived(_ entry: Entry, epoch: String, on topic: String) -> Action? {
        switch topics[topic] {
        case nil:
            topics[topic] = .delivering(epoch: epoch, last: entry.offset)
            return .deliver(topic: topic, [entry])
        case .delivering(let known, let last):
            // A new epoch (Redis lost the keys): offsets begin again, and resumes say so.
            guard known == epoch, entry.offset > last else {
                if known == epoch { return nil }  // delivered already (read while filling)
                topics[topic] = .delivering(epoch: epoch, last: entry.offset)
                return .deliver(topic: topic, [entry])
            }
            guard entry.offset == last + 1 else {
                topics[topic] = .filling(epoch: epoch, last: last, through: entry.offset - 1, waiting: [entry])
                return .fetch(topic: topic, after: last, through: entry.offset - 1)
            }
            topics[topic] = .delivering(epoch: epoch, last: entry.offset)
            return .deliver(topic: topic, [entry])
        case .filling(let known, let last, let through, var waiting):
            guard known == epoch else {
                topics[topic] = .delivering(epoch: epoch, last: entry.offset)
                return .deliver(topic: topic, [entry])
            }
            waiting.append(entry)
            topics[topic] = .filling(epoch: known, last: last, through: through, waiting: waiting)
            return nil
        }
    }

    /// What the stream held after the topic's last delivered offset, in offset order.
    mutating func fetched(_ entries: [Entry], on topic: String) -> [Action] {
        guard case .filling(let epoch, let last, let through, let waiting) = topics[topic] else { return [] }
        var next = last
        var ready: [Entry] = []
        for entry in entries where entry.offset > next {
            guard entry.offset == next + 1 else { break }
            ready.append(entry)
            next = entry.offset
        }
        let reachedEnd = through.map { next >= $0 } ?? (entries.allSatisfy { $0.offset <= next })
        guard reachedEnd else {
            topics[topic] = nil
            return (ready.isEmpty ? [] : [.deliver(topic: topic, ready)]) + [.lose(topic: topic)]
        }
        for (index, entry) in waiting.sorted(by: { $0.offset < $1.offset }).enumerated() where entry.offset > next {
            guard entry.offset == next + 1 else {
                let rest = Array(waiting.sorted(by: { $0.offset < $1.offset })[index...])
                topics[topic] = .filling(epoch: epoch, last: next, through: entry.offset - 1, waiting: rest)
                return [.deliver(topic: topic, ready), .fetch(topic: topic, after: next, through: entry.offset - 1)]
            }
            ready.append(entry)
            next = entry.offset
        }
        topics[topic] = .delivering(epoch: epoch, last: next)
        return ready.isEmpty ? [] : [.deliver(topic: topic, ready)]
    }

    /// The read failed (the link went again): the topic's subscribers here resume.
    mutating func fetchFailed(on topic: String) -> Action {
        topics[topic] = nil
        return .lose(topic: topic)
    }

    /// A subscriber here begins at `offset` (its resume's position): a topic not followed yet is
    /// followed from there, so a link that breaks before its first publication loses nothing.
    mutating func subscribed(to topic: String, epoch: String, offset: UInt64) {
        if topics[topic] == nil { topics[topic] = .delivering(epoch: epoch, last: offset) }
    }

    /// No subscriber here any more: nothing to follow.
    mutating func forget(_ topic: String) {
        topics[topic] = nil
    }

    /// The link came back: every topic followed reads what was recorded while it was away.
    mutating func relinked() -> [Action] {
        var actions: [Action] = []
        for (topic, state) in topics {
            switch state {
            case .delivering(let epoch, let last), .filling(let epoch, let last, _, _):
                topics[topic] = .filling(epoch: epoch, last: last, through: nil, waiting: [])
                actions.append(.fetch(topic: topic, after: last, through: nil))
            }
        }
        return actions
    }
}

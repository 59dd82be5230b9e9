import NIOCore

/// A hub route's topic history (`routes.<name>.hub.history`): which topics keep their last
/// publications, how many, for how long, and where.
///
/// Every publication on such a topic gets a position (an offset, counting from 1, and the
/// stream's epoch); a subscribe may carry the position a client last saw and gets what it
/// missed, or `recovered: false` when the history does not reach back that far.
public struct HistorySettings: Sendable, Equatable {
    /// Where the history lives.
    public enum Storage: String, Sendable, Equatable, CaseIterable {
        /// In memory: a restart starts every topic on a new epoch.
        case memory
        /// Also in an append-only file per route: a restart keeps the epochs and publications.
        case file
    }

    /// The topics (exact names, `prefix.*` or `*`) that keep history.
    public var topics: [String]
    /// Publications kept per topic, at most.
    public var size: Int
    /// How long a publication is kept.
    public var ttl: TimeAmount
    /// Payload bytes kept per topic, at most (the newest publication always stays).
    public var maxBytes: Int
    /// Topics whose stream is kept at once; one more forgets the least recently used.
    public var maxTopics: Int
    public var storage: Storage
    /// With `file` storage: the directory of the route's file. Empty: `$STATE_DIRECTORY`
    /// (systemd's `StateDirectory=`), else `/var/lib/wssgate`.
    public var directory: String

    public init(
        topics: [String] = ["*"],
        size: Int = 100,
        ttl: TimeAmount = .minutes(5),
        maxBytes: Int = 1 << 20,
        maxTopics: Int = 10_000,
        storage: Storage = .memory,
        directory: String = ""
    ) {
        self.maxTopics = maxTopics
        self.topics = topics
        self.size = size
        self.ttl = ttl
        self.maxBytes = maxBytes
        self.storage = storage
        self.directory = directory
    }

    /// Whether this history covers `topic` (an exact topic, never a pattern).
    public func covers(_ topic: String) -> Bool {
        topics.contains { rule in
            if rule == "*" { return true }
            if rule.hasSuffix(".*") { return topic.hasPrefix(rule.dropLast()) }
            return rule == topic
        }
    }

    /// The directory `file` storage writes to.
    public func resolvedDirectory(environment: [String: String]) -> String {
        if !directory.isEmpty { return directory }
        // systemd may list several directories, separated by colons: the first is ours.
        if let state = environment["STATE_DIRECTORY"], let first = state.split(separator: ":").first {
            return String(first)
        }
        return "/var/lib/wssgate"
    }
}

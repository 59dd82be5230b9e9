/// Topic names: the gateway's reserved ones, and patterns.
extension Hub {
    /// Topics of the gateway's own (`$user:alice`, `$tag:room-1`): a connection's user and tags
    /// subscribe it, so a send to a user or tag reaches every node of a cluster, and presence
    /// per user is the topic's. Clients and workers cannot name them and patterns never match
    /// them (as MQTT's `$` topics).
    public static func isReserved(_ topic: String) -> Bool { topic.utf8.first == UInt8(ascii: "$") }
    public static func userTopic(_ user: String) -> String { "$user:" + user }
    public static func tagTopic(_ tag: String) -> String { "$tag:" + tag }

    /// The pattern prefixes that can cover `topic`: `""` (`*`) and each of its prefixes that ends
    /// at a `.` (`a.`, `a.b.` for `a.b.c`), since a pattern's `*` is always a whole last
    /// segment. A publish looks these up — as many as the topic has segments — instead of
    /// testing every pattern subscribed: a client that subscribes to a hundred thousand
    /// patterns costs a publish nothing more.
    package static func patternPrefixes(of topic: String) -> [String] {
        var prefixes = [""]
        var index = topic.utf8.startIndex
        while let dot = topic.utf8[index...].firstIndex(of: UInt8(ascii: ".")) {
            index = topic.utf8.index(after: dot)
            prefixes.append(String(topic[..<index]))
        }
        return prefixes
    }

    /// Whether a subscription names a pattern (`news.*`, `*`) rather than one topic.
    public static func isPattern(_ topic: String) -> Bool { topic == "*" || topic.hasSuffix(".*") }

    /// Whether `topic` falls under `pattern` (an exact topic, `prefix.*`, or `*`).
    public static func matches(_ pattern: String, _ topic: String) -> Bool {
        if pattern == "*" { return true }
        if pattern.hasSuffix(".*") { return topic.hasPrefix(pattern.dropLast()) }
        return pattern == topic
    }
}

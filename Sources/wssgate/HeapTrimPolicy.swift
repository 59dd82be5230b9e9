/// When to give freed heap pages back to the system.
///
/// glibc's malloc keeps the pages of freed memory: after a wave of connections closes, the
/// process stays at its peak size (five rounds of 2,000 connections took a gateway from 80 to
/// 144 MB of PSS with no leak — malloc's in-use bytes were back at 2.6 MB). `malloc_trim(0)`
/// returns them (120 MB in 9 ms). It takes malloc's locks, so it is done when connections have
/// fallen by a good number since the last trim (or the peak since then) and the count has held
/// still for one look: after a wave, not in the middle of one.
struct HeapTrimPolicy: Sendable {
    /// Connections that must have gone, from the peak since the last trim, to make a trim worth it.
    var threshold: Int
    private var peak: Int
    private var last: Int

    init(threshold: Int = 256, connections: Int = 0) {
        self.threshold = threshold
        self.peak = connections
        self.last = connections
    }

    /// One look at the number of open connections: true to trim now.
    mutating func observe(connections: Int) -> Bool {
        defer { last = connections }
        peak = max(peak, connections)
        guard connections == last, peak - connections >= threshold else { return false }
        peak = connections
        return true
    }
}

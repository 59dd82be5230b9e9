/// Where a topic's stream stands: the offset of its last publication (0 before the first) and
/// the stream's epoch. Offsets only mean something within one epoch: a new epoch (history
/// lost, say a restart with memory storage) starts them over, and a client that resumes with
/// an old one is told it could not be recovered.
///
/// In JSON (the hub protocol, the admin API): `{"offset": N, "epoch": "…"}`.
public struct StreamPosition: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    public var offset: UInt64
    public var epoch: String

    public init(offset: UInt64, epoch: String) {
        self.offset = offset
        self.epoch = epoch
    }

    public var description: String { "\(offset)@\(epoch)" }

    /// A new epoch: 16 random hex digits, so that no two streams (two runs of one gateway, two
    /// nodes) share one by chance.
    public static func newEpoch() -> String {
        var generator = SystemRandomNumberGenerator()
        let value = generator.next() as UInt64
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}

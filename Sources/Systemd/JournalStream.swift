#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Whether standard error is connected to systemd's journal (`JOURNAL_STREAM`, systemd.exec(5)).
///
/// systemd sets `JOURNAL_STREAM=<device>:<inode>` for a unit whose output goes to the journal;
/// the variable is inherited by children whose output may have been redirected since, so the
/// pair is compared with what descriptor 2 is now. When it matches, a line may start with a
/// syslog priority (`<3>` for an error) that journald takes as the line's priority and strips,
/// so `journalctl -p err` finds errors while the line itself stays in the configured format.
public struct JournalStream: Sendable, Equatable {
    public var device: UInt64
    public var inode: UInt64

    public init(device: UInt64, inode: UInt64) {
        self.device = device
        self.inode = inode
    }

    /// Parses `JOURNAL_STREAM`; nil when it is missing or malformed.
    public init?(environment: [String: String]) {
        guard let value = environment["JOURNAL_STREAM"] else { return nil }
        let parts = value.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return nil }
        self.device = device
        self.inode = inode
    }

    /// Whether `descriptor` (standard error by default) is this stream.
    public func isConnected(descriptor: Int32 = 2) -> Bool {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return false }
        return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }

    /// Whether standard error goes to the journal, as this process's environment says.
    public static func standardErrorIsJournal(environment: [String: String]) -> Bool {
        JournalStream(environment: environment)?.isConnected() ?? false
    }
}

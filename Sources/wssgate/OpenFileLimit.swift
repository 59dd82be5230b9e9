#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Every connection is a descriptor, and the usual soft limit (1024) is far below what a gateway
/// holds: raise the soft limit to the hard one at start, as Go's runtime and nginx's
/// `worker_rlimit_nofile` do. The hard limit stays the operator's (`LimitNOFILE=`, `ulimit -Hn`).
enum OpenFileLimit {
    /// Raises the soft limit; returns the limit now in force.
    static func raise() -> UInt64 {
        var limit = rlimit()
        guard getrlimit(RLIMIT_NOFILE_VALUE, &limit) == 0 else { return 0 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(RLIMIT_NOFILE_VALUE, &raised) == 0 { return UInt64(raised.rlim_cur) }
        }
        return UInt64(limit.rlim_cur)
    }

    #if canImport(Glibc)
    private static let RLIMIT_NOFILE_VALUE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    private static let RLIMIT_NOFILE_VALUE = RLIMIT_NOFILE
    #endif
}

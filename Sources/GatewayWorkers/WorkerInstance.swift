import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Link ids, unique within a pool.
final class LinkIDs: Sendable {
    private let value = NIOLockedValueBox<UInt64>(0)
    func next() -> UInt64 {
        value.withLockedValue {
            $0 += 1
            return $0
        }
    }
}

/// One instance of a pool: its socket, and its process when the gateway supervises it.
struct WorkerInstance: Sendable {
    var name: String
    var socketPath: String
    var process: WorkerProcess?

    /// The directory for supervised workers' sockets: the configured one, or a fresh private
    /// (0700) directory under the temporary directory.
    static func socketDirectory(_ configured: String) throws -> (path: String, made: Bool) {
        if !configured.isEmpty {
            mkdir(configured, 0o700)
            return (configured, false)
        }
        let base = ProcessEnvironment.value("TMPDIR") ?? "/tmp"
        var template = Array("\(base)/wssgate-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw WorkerSetupError(message: "cannot make a socket directory under \(base)")
        }
        return (String(cString: made), true)
    }
}

struct WorkerSetupError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

enum ProcessEnvironment {
    static func value(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}

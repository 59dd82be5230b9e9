#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Sockets passed by systemd's socket activation (`sd_listen_fds_with_names(3)`): descriptors
/// 3… with their `FileDescriptorName=`s, meant for this process only when `LISTEN_PID` is ours.
public struct ListenFileDescriptors: Sendable {
    public struct Descriptor: Sendable, Equatable {
        public var fd: Int32
        public var name: String
        public init(fd: Int32, name: String) {
            self.fd = fd
            self.name = name
        }
    }

    public static let firstDescriptor: Int32 = 3

    public let descriptors: [Descriptor]

    public init(environment: [String: String], pid: Int32 = getpid()) {
        guard let countText = environment["LISTEN_FDS"], let count = Int32(countText), count > 0,
            environment["LISTEN_PID"].flatMap(Int32.init) == pid
        else {
            descriptors = []
            return
        }
        let names =
            environment["LISTEN_FDNAMES"]?.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            ?? []
        descriptors = (0..<count).map { index in
            let name = Int(index) < names.count && !names[Int(index)].isEmpty ? names[Int(index)] : "unknown"
            return Descriptor(fd: Self.firstDescriptor + index, name: name)
        }
    }

    /// The descriptor for `fd:NAME` or `fd:3`.
    public func descriptor(named reference: String) -> Descriptor? {
        if let number = Int32(reference) { return descriptors.first { $0.fd == number } }
        return descriptors.first { $0.name == reference }
    }

    /// Marks the descriptors close-on-exec and clears the variables, so worker processes neither
    /// inherit the sockets nor believe they were activated (what `sd_listen_fds(1)` does).
    public static func consume() {
        for variable in ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"] { unsetenv(variable) }
    }

    public func markCloseOnExec() {
        for descriptor in descriptors {
            let flags = fcntl(descriptor.fd, F_GETFD)
            if flags >= 0 { _ = fcntl(descriptor.fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }
}

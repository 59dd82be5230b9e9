import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The user id of the process on the other end of a Unix socket (SO_PEERCRED): a worker socket
/// is trusted only when its owner is a user the configuration allows.
enum PeerCredentials {
    /// `struct ucred` (pid, uid, gid), which glibc only declares under `_GNU_SOURCE`.
    struct Credentials {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    static func uid(of channel: any Channel) -> EventLoopFuture<UInt32> {
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
        }
        #if os(Linux)
        return provider.unsafeGetSocketOption(level: .socket, name: .init(rawValue: SO_PEERCRED)).map {
            (credentials: Credentials) in
            credentials.uid
        }
        #else
        return channel.eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
        #endif
    }

    static var ownUID: UInt32 { UInt32(getuid()) }
}

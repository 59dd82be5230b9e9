import GatewayCore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The admin API's listener: a Unix socket (mode 0660) or TCP with a bearer token. It stays up
/// while the gateway drains, so connections can still be inspected then, and goes last.
public final class AdminServer: Service {
    public struct StartError: Error, CustomStringConvertible {
        public var address: ListenAddress
        public var reason: String
        public var description: String { "admin API on \(address): \(reason)" }
    }

    private let settings: AdminSettings
    private let api: AdminAPI
    private let group: any EventLoopGroup
    private let logger: Logger

    public init(settings: AdminSettings, api: AdminAPI, group: any EventLoopGroup, logger: Logger) {
        self.settings = settings
        self.api = api
        self.group = group
        self.logger = logger
    }

    public func run() async throws {
        guard let address = settings.address else {
            try? await gracefulShutdown()
            return
        }
        let channel: any Channel
        do {
            channel = try await bind(address)
        } catch {
            let reason = (error as? StartError)?.reason ?? "\(error)"
            guard !settings.isExplicit else { throw StartError(address: address, reason: reason) }
            // The default socket needs /run/wssgate (systemd's RuntimeDirectory=); run by hand
            // without it, the gateway still serves, without an admin API.
            logger.warning(
                "admin API not started",
                metadata: ["address": .string("\(address)"), "error": .string(reason)]
            )
            try? await gracefulShutdown()
            return
        }
        logger.info(
            "admin API listening",
            metadata: [
                "address": .string(Self.describe(channel.localAddress, fallback: address)),
                "bearer": .string(settings.token == nil ? "not required" : "required"),
            ]
        )
        try? await gracefulShutdown()
        try? await channel.close()
        if case .unix(let path) = address { unlink(path) }
    }

    private func bind(_ address: ListenAddress) async throws -> any Channel {
        let api = self.api
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(AdminHTTPHandler(api: api))
                }
            }
        switch address {
        case .tcp(let host, let port):
            return try await bootstrap.bind(host: host, port: port).get()
        case .unix(let path):
            let directory = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
            if !directory.isEmpty, mkdir(directory, 0o750) != 0, errno != EEXIST {
                throw StartError(
                    address: address,
                    reason: "cannot create \(directory): \(String(cString: strerror(errno)))"
                )
            }
            // A socket file left by a process that died is replaced; one that a running gateway
            // still answers on is not taken from it.
            if Self.isAnswering(unixSocket: path) {
                throw StartError(address: address, reason: "\(path) is in use by another process")
            }
            let channel = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
            // The socket is the admin API's only guard without a token: owner and group only.
            guard chmod(path, 0o660) == 0 else {
                try? await channel.close()
                throw StartError(
                    address: address,
                    reason: "cannot set the mode of \(path): \(String(cString: strerror(errno)))"
                )
            }
            return channel
        case .systemd:
            throw StartError(address: address, reason: "the admin API binds its own socket")
        }
    }

    /// Whether something accepts connections on the Unix socket at `path`.
    static func isAnswering(unixSocket path: String) -> Bool {
        #if canImport(Glibc)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_UNIX, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        return result == 0
    }

    private static func describe(_ address: SocketAddress?, fallback: ListenAddress) -> String {
        guard let address else { return "\(fallback)" }
        switch address {
        case .unixDomainSocket: return "unix:\(address.pathname ?? "?")"
        default: return "\(address.ipAddress ?? "?"):\(address.port ?? 0)"
        }
    }
}

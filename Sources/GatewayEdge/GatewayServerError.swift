import GatewayCore
import NIOCore
import ReadableErrors

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A listener that cannot serve: which one, where, why, and what to do about it.
struct GatewayServerError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }

    init(message: String) {
        self.message = message
    }

    /// A bind that failed, named by listener and address, with the usual way out of the usual
    /// causes: a privileged port, a port someone else holds, an address no interface has.
    init(bindFailure error: any Error, listener: String, address: ListenAddress) {
        var text = "listener \(listener): cannot bind \(address): \(ReadableError.describe(error))"
        switch (error as? IOError)?.errnoCode {
        case EACCES where Self.isPrivileged(address):
            text += " (a port below 1024 needs root or CAP_NET_BIND_SERVICE; under systemd, let wssgate.socket"
            text += " bind it and use address: \"fd:https\")"
        case EADDRINUSE:
            text += " (another process listens there: ss -ltnp shows which)"
        case EADDRNOTAVAIL:
            text += " (no interface of this machine has that address)"
        default:
            break
        }
        message = text
    }

    private static func isPrivileged(_ address: ListenAddress) -> Bool {
        if case .tcp(_, let port) = address { return port > 0 && port < 1024 }
        return false
    }
}

import NIOCore
import NIOPosix
import NIOSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An error as a sentence for an operator, for log lines and command output: NIO's and BoringSSL's errors carry system-call
/// names, internal type dumps and the source paths of the machine that built the binary, none
/// of which helps the reader of a log line or of `wssgate probe`'s output.
public enum ReadableError {
    public static func describe(_ error: any Error) -> String {
        switch error {
        case let error as IOError:
            return systemText(error.errnoCode)
        case let error as NIOConnectionError:
            if let first = error.connectionErrors.first { return describe(first.error) }
            if let dns = error.dnsAError ?? error.dnsAAAAError {
                return "cannot resolve \(error.host): \(describe(dns))"
            }
            return "cannot connect to \(error.host):\(error.port)"
        case let error as ChannelError:
            switch error {
            case .connectTimeout(let amount): return "no connection within \(seconds(amount))"
            case .ioOnClosedChannel, .alreadyClosed, .eof: return "the connection closed"
            default: return withoutSourcePaths("\(error)")
            }
        case let error as NIOSSLError:
            return tlsText(error)
        default:
            return withoutSourcePaths("\(error)")
        }
    }

    /// `1 s`, `0.25 s`.
    public static func seconds(_ amount: TimeAmount) -> String {
        let millis = amount.nanoseconds / 1_000_000
        return millis % 1000 == 0 ? "\(millis / 1000) s" : "\(Double(millis) / 1000) s"
    }

    /// `strerror`'s text, lower-cased as in the middle of a sentence: "connection refused".
    public static func systemText(_ code: Int32) -> String {
        let text = String(cString: strerror(code))
        guard let first = text.first else { return "error \(code)" }
        return first.lowercased() + text.dropFirst()
    }

    /// A TLS failure by its reason: "TLS handshake failed: certificate verify failed".
    public static func tlsText(_ error: NIOSSLError) -> String {
        switch error {
        case .handshakeFailed(let inner):
            return "TLS handshake failed: \(boringSSLReasons("\(inner)"))"
        case .uncleanShutdown:
            return "the TLS connection ended without a close_notify"
        default:
            return "TLS: \(boringSSLReasons("\(error)"))"
        }
    }

    /// BoringSSL writes `error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED
    /// at /build/path/handshake.cc:393`: the reason is the fourth field after `error:`.
    public static func boringSSLReasons(_ text: String) -> String {
        var reasons: [String] = []
        var rest = Substring(text)
        while let start = rest.firstRange(of: "error:") {
            let fields = rest[start.upperBound...].split(separator: ":", maxSplits: 3, omittingEmptySubsequences: false)
            guard fields.count == 4 else { break }
            let reason = fields[3].prefix { $0.isLetter || $0.isNumber || $0 == "_" }
            if !reason.isEmpty { reasons.append(reason.lowercased().replacingOccurrences(of: "_", with: " ")) }
            rest = fields[3].dropFirst(reason.count)
        }
        return reasons.isEmpty ? withoutSourcePaths(text) : reasons.joined(separator: "; ")
    }

    /// Drops ` at /path/file.ext:123` and `file: "/path…", line: 123` from a description.
    public static func withoutSourcePaths(_ text: String) -> String {
        var out = ""
        var rest = Substring(text)
        while !rest.isEmpty {
            if rest.hasPrefix(" at /") {
                rest = rest.dropFirst(4).drop { $0 != " " && $0 != ")" && $0 != "]" && $0 != "," }
                continue
            }
            for prefix in [", file: \"", "file: \""] where rest.hasPrefix(prefix) {
                rest = rest.dropFirst(prefix.count).drop { $0 != "\"" }.dropFirst()
                if rest.hasPrefix(", line: ") { rest = rest.dropFirst(8).drop { $0.isNumber } }
                if prefix.hasPrefix("file"), rest.hasPrefix(", ") { rest = rest.dropFirst(2) }
            }
            guard let next = rest.first else { break }
            if next == " " && rest.hasPrefix(" at /") || rest.hasPrefix(", file: \"") || rest.hasPrefix("file: \"") {
                continue
            }
            out.append(rest.removeFirst())
        }
        return out
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: Character(target), omittingEmptySubsequences: false).joined(separator: replacement)
    }
}

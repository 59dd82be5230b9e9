import Crypto
import GatewayCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The files under `tls.acme.storage` (docs/certificates.md):
///
///     <storage>/lock                                   held while ordering (flock)
///     <storage>/accounts/<directory host>/account.key  the account's ES256 key (0600)
///     <storage>/accounts/<directory host>/account.url  its URL at the CA
///     <storage>/certificates/<first domain>/fullchain.pem, privkey.pem (0600)
///
/// Everything is written to a temporary file and renamed, so a reader (another gateway, a
/// reload) never sees half a file.
struct ACMEStorage: Sendable {
    var settings: ACMESettings

    var root: String { settings.storage }

    /// One account per CA: the directory's host and port name its folder.
    var accountFolder: String {
        let host = ACMEHTTPClient.Target(settings.directory).map { "\($0.host)_\($0.port)" } ?? "default"
        return "\(root)/accounts/\(host)"
    }

    /// Creates the folders (0700: they hold private keys).
    func prepare() throws(ACMEError) {
        for folder in [root, "\(root)/accounts", accountFolder, "\(root)/certificates", settings.certificateFolder] {
            if mkdir(folder, 0o700) != 0 && errno != EEXIST {
                throw ACMEError(.storage, "cannot create \(folder): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// The account key, made (and kept) on first use.
    func accountKey() throws(ACMEError) -> P256.Signing.PrivateKey {
        let path = "\(accountFolder)/account.key"
        if let text = try read(path) {
            do {
                return try P256.Signing.PrivateKey(pemRepresentation: String(decoding: text, as: UTF8.self))
            } catch {
                throw ACMEError(
                    .storage,
                    "\(path) is not a P-256 private key in PEM: move it away to make a new account"
                )
            }
        }
        let key = P256.Signing.PrivateKey()
        try write(Array(key.pemRepresentation.utf8), to: path, mode: 0o600)
        return key
    }

    func accountURL() throws(ACMEError) -> String? {
        try read("\(accountFolder)/account.url").map { String(decoding: $0, as: UTF8.self) }.flatMap {
            $0.isEmpty ? nil : $0
        }
    }

    func saveAccountURL(_ url: String) throws(ACMEError) {
        try write(Array(url.utf8), to: "\(accountFolder)/account.url", mode: 0o600)
    }

    /// Stores a new certificate: the key first, then the chain, each renamed into place.
    func saveCertificate(chainPEM: [UInt8], keyPEM: [UInt8]) throws(ACMEError) {
        try write(keyPEM, to: settings.keyPath, mode: 0o600)
        try write(chainPEM, to: settings.certificatePath, mode: 0o644)
    }

    /// A file's bytes, or nil when it does not exist.
    func read(_ path: String) throws(ACMEError) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == ENOENT { return nil }
            throw ACMEError(.storage, "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = chunk.withUnsafeMutableBytes { SystemCalls.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw ACMEError(.storage, "cannot read \(path): \(String(cString: strerror(errno)))")
            }
            if count == 0 { return result }
            result.append(contentsOf: chunk[0..<count])
            if result.count > 1 << 20 { throw ACMEError(.storage, "\(path) is larger than 1 MiB") }
        }
    }

    /// Writes `path` whole or not at all: a temporary file, fsync, rename.
    func write(_ bytes: [UInt8], to path: String, mode: mode_t) throws(ACMEError) {
        let temporary = "\(path).tmp-\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard descriptor >= 0 else {
            throw ACMEError(.storage, "cannot write \(temporary): \(String(cString: strerror(errno)))")
        }
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { SystemCalls.write(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                close(descriptor)
                unlink(temporary)
                throw ACMEError(.storage, "cannot write \(temporary): \(reason)")
            }
            written += count
        }
        // The umask must not widen or narrow what was asked for.
        fchmod(descriptor, mode)
        fsync(descriptor)
        close(descriptor)
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw ACMEError(.storage, "cannot rename \(temporary) to \(path): \(reason)")
        }
    }

    /// An exclusive lock on `<storage>/lock` (flock), so gateways sharing the storage never
    /// order at the same time; released when the returned descriptor is closed.
    func tryLock() throws(ACMEError) -> Int32? {
        let path = "\(root)/lock"
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw ACMEError(.storage, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        if flock(descriptor, LOCK_EX | LOCK_NB) == 0 { return descriptor }
        let failure = errno
        close(descriptor)
        if failure == EWOULDBLOCK { return nil }
        throw ACMEError(.storage, "cannot lock \(path): \(String(cString: strerror(failure)))")
    }

    func unlock(_ descriptor: Int32) {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}

/// `read` and `write` of the C library, named apart from `ACMEStorage`'s own methods.
private enum SystemCalls {
    static func read(_ descriptor: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
        #if canImport(Glibc)
        Glibc.read(descriptor, buffer, count)
        #else
        Musl.read(descriptor, buffer, count)
        #endif
    }

    static func write(_ descriptor: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
        #if canImport(Glibc)
        Glibc.write(descriptor, buffer, count)
        #else
        Musl.write(descriptor, buffer, count)
        #endif
    }
}

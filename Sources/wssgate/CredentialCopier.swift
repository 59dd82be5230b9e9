import GatewayCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Copies the secret files a configuration names into a folder the gateway's user may read
/// (`CredentialFiles`): what `wssgate copy-credentials` does as root before the gateway starts
/// and before each reload.
///
/// Each copy is written to a temporary name, owned by the folder's owner, mode 0400, then
/// renamed over the last copy, so a reader sees the old file or the new one and never half of
/// one. Copies of files the configuration no longer names are removed.
struct CredentialCopier {
    struct Failure: Error, CustomStringConvertible {
        var path: String
        var problem: String
        var description: String { "\(path): \(problem)" }
    }

    /// The folder of copies.
    let directory: String
    /// Who owns the copies: the owner of the folder that holds `directory` (under systemd the
    /// service's runtime directory, which belongs to its user, `DynamicUser=` included).
    let owner: (uid: uid_t, gid: gid_t)

    init(directory: String) throws(Failure) {
        self.directory = directory
        var parent = String(directory.reversed().drop { $0 == "/" }.reversed())
        parent = parent.lastIndex(of: "/").map { String(parent[..<$0]) } ?? "."
        var info = stat()
        guard stat(parent.isEmpty ? "/" : parent, &info) == 0 else {
            throw Failure(path: parent, problem: "cannot read its owner: \(Self.errorText())")
        }
        owner = (info.st_uid, info.st_gid)
    }

    /// The secret files of a configuration, as it names them, each once.
    static func files(of configuration: GatewayConfiguration) -> [String] {
        var files: [String] = []
        for listener in configuration.listeners {
            guard let tls = listener.tls else { continue }
            if case .files(let certificate, let key) = tls.source { files += [certificate, key] }
            for additional in tls.additional { files += [additional.certificate, additional.key] }
            if let clientCA = tls.clientCA { files.append(clientCA) }
        }
        if let token = configuration.admin.tokenFile { files.append(token) }
        for route in configuration.routes {
            guard let auth = route.auth else { continue }
            if let secret = auth.secretFile { files.append(secret) }
            files += auth.publicKeys.map(\.path)
            if let jwks = auth.jwks { files.append(jwks.path) }
        }
        var seen = Set<String>()
        return files.filter { seen.insert($0).inserted }
    }

    /// Copies `files` and removes every other file below the folder. Returns the copies' paths.
    @discardableResult
    func copy(_ files: [String]) throws(Failure) -> [String] {
        try makeFolder(directory)
        var copies: [String] = []
        for file in files {
            let copy = CredentialFiles.copyPath(for: file, in: directory)
            try makeFolder(String(copy[..<copy.lastIndex(of: "/")!]))
            try write(try read(file), to: copy)
            copies.append(copy)
        }
        try prune(directory, keeping: Set(copies))
        return copies
    }

    private func read(_ path: String) throws(Failure) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw Failure(path: path, problem: "cannot read: \(Self.errorText())") }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 { throw Failure(path: path, problem: "cannot read: \(Self.errorText())") }
            if count == 0 { return bytes }
            bytes += chunk[0..<count]
            if bytes.count > 4 << 20 { throw Failure(path: path, problem: "larger than 4 MiB") }
        }
    }

    private func write(_ bytes: [UInt8], to path: String) throws(Failure) {
        let temporary = path + ".new"
        unlink(temporary)
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o400)
        guard descriptor >= 0 else { throw Failure(path: temporary, problem: "cannot create: \(Self.errorText())") }
        var failure: Failure?
        if fchown(descriptor, owner.uid, owner.gid) != 0 {
            failure = Failure(path: temporary, problem: "cannot give it to its user: \(Self.errorText())")
        }
        var offset = 0
        while failure == nil, offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if written <= 0 { failure = Failure(path: temporary, problem: "cannot write: \(Self.errorText())") }
            offset += max(written, 0)
        }
        if failure == nil, fsync(descriptor) != 0 {
            failure = Failure(path: temporary, problem: "cannot write: \(Self.errorText())")
        }
        close(descriptor)
        if failure == nil, rename(temporary, path) != 0 {
            failure = Failure(path: path, problem: "cannot replace: \(Self.errorText())")
        }
        if let failure {
            unlink(temporary)
            throw failure
        }
    }

    /// Creates a folder (and those above it inside `directory`), 0700 and the owner's.
    private func makeFolder(_ path: String) throws(Failure) {
        var info = stat()
        if lstat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else { throw Failure(path: path, problem: "is not a folder") }
        } else {
            if path != directory, path.count > directory.count {
                try makeFolder(String(path[..<path.lastIndex(of: "/")!]))
            }
            guard mkdir(path, 0o700) == 0 || errno == EEXIST else {
                throw Failure(path: path, problem: "cannot create: \(Self.errorText())")
            }
        }
        guard chown(path, owner.uid, owner.gid) == 0, chmod(path, 0o700) == 0 else {
            throw Failure(path: path, problem: "cannot give it to its user: \(Self.errorText())")
        }
    }

    /// Removes files below `path` that are not in `keeping`, and folders left empty.
    private func prune(_ path: String, keeping: Set<String>) throws(Failure) {
        guard let folder = opendir(path) else { throw Failure(path: path, problem: "cannot list: \(Self.errorText())") }
        var entries: [(String, UInt8)] = []
        while let entry = readdir(folder) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { entries.append((name, entry.pointee.d_type)) }
        }
        closedir(folder)
        for (name, type) in entries {
            let child = path + "/" + name
            if type == UInt8(DT_DIR) {
                try prune(child, keeping: keeping)
                rmdir(child)  // only when empty
            } else if !keeping.contains(child) {
                unlink(child)
            }
        }
    }

    static func errorText() -> String { String(cString: strerror(errno)) }
}

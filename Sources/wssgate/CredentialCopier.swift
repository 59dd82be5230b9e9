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
/// The copies and their folders belong to the copier (root), readable by the group of the folder
/// that holds the copies (under systemd the service's runtime directory, whose group is the
/// service's, `DynamicUser=` included): files 0440, folders 0750. The gateway can read them and
/// change none of them, so a root process never writes through anything the gateway could have
/// swapped for a symbolic link; the one thing the gateway owns — the folder's place in its
/// runtime directory — is checked (`O_NOFOLLOW`) and made anew when it is not a real folder, and
/// every step below it is relative to a descriptor. Each copy is written under a temporary name
/// and renamed over the last one, so a reader sees the old file or the new, never half of one;
/// copies of files the configuration no longer names are removed.
struct CredentialCopier {
    struct Failure: Error, CustomStringConvertible {
        var path: String
        var problem: String
        var description: String { "\(path): \(problem)" }
    }

    /// The folder of copies.
    let directory: String
    /// The group that reads the copies: the group of the folder that holds `directory`.
    let group: gid_t

    init(directory: String) throws(Failure) {
        let trimmed = String(directory.reversed().drop { $0 == "/" }.reversed())
        self.directory = trimmed
        let parent = trimmed.lastIndex(of: "/").map { String(trimmed[..<$0]) } ?? "."
        var info = stat()
        guard stat(parent.isEmpty ? "/" : parent, &info) == 0 else {
            throw Failure(path: parent, problem: "cannot read its group: \(Self.errorText())")
        }
        group = info.st_gid
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
        let root = try openRoot()
        defer { close(root) }
        var kept = Set<String>()
        for file in files {
            let relative = file.split(separator: "/").map(String.init)
            guard let name = relative.last, !relative.contains("..") else {
                throw Failure(path: file, problem: "not a path to a file")
            }
            let folder = try openFolder(relative.dropLast(), under: root)
            defer { close(folder) }
            try write(try read(file), named: name, in: folder, path: file)
            kept.insert(relative.joined(separator: "/"))
        }
        try prune(root, prefix: "", keeping: kept)
        return files.map { CredentialFiles.copyPath(for: $0, in: directory) }
    }

    /// The folder of copies, ours and real: anything else in its place (a symbolic link, a
    /// file, a folder someone else owns) is moved out of the way first.
    private func openRoot() throws(Failure) -> Int32 {
        var info = stat()
        if lstat(directory, &info) == 0, info.st_mode & S_IFMT != S_IFDIR || info.st_uid != geteuid() {
            let aside = directory + ".replaced"
            _ = try? removeTree(aside)
            guard rename(directory, aside) == 0 else {
                throw Failure(path: directory, problem: "cannot move it out of the way: \(Self.errorText())")
            }
            _ = try? removeTree(aside)
        }
        if mkdir(directory, 0o750) != 0 && errno != EEXIST {
            throw Failure(path: directory, problem: "cannot create: \(Self.errorText())")
        }
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else { throw Failure(path: directory, problem: "cannot open: \(Self.errorText())") }
        try own(descriptor, mode: 0o750, path: directory)
        return descriptor
    }

    /// A folder below `root`, made where missing, each step without following a link.
    private func openFolder(_ components: ArraySlice<String>, under root: Int32) throws(Failure) -> Int32 {
        var current = dup(root)
        var path = directory
        for component in components where !component.isEmpty && component != "." {
            path += "/" + component
            if mkdirat(current, component, 0o750) != 0 && errno != EEXIST {
                close(current)
                throw Failure(path: path, problem: "cannot create: \(Self.errorText())")
            }
            let next = openat(current, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            close(current)
            guard next >= 0 else { throw Failure(path: path, problem: "cannot open: \(Self.errorText())") }
            current = next
            try own(current, mode: 0o750, path: path)
        }
        return current
    }

    private func own(_ descriptor: Int32, mode: mode_t, path: String) throws(Failure) {
        guard fchown(descriptor, geteuid(), group) == 0, fchmod(descriptor, mode) == 0 else {
            let problem = "cannot give it to its group: \(Self.errorText())"
            close(descriptor)
            throw Failure(path: path, problem: problem)
        }
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

    private func write(_ bytes: [UInt8], named name: String, in folder: Int32, path: String) throws(Failure) {
        let temporary = name + ".new"
        unlinkat(folder, temporary, 0)
        let descriptor = openat(folder, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o440)
        guard descriptor >= 0 else { throw Failure(path: path, problem: "cannot copy: \(Self.errorText())") }
        var failure: Failure?
        if fchown(descriptor, geteuid(), group) != 0 || fchmod(descriptor, 0o440) != 0 {
            failure = Failure(path: path, problem: "cannot give the copy to its group: \(Self.errorText())")
        }
        var offset = 0
        while failure == nil, offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if written <= 0 { failure = Failure(path: path, problem: "cannot write the copy: \(Self.errorText())") }
            offset += max(written, 0)
        }
        if failure == nil, fsync(descriptor) != 0 {
            failure = Failure(path: path, problem: "cannot write the copy: \(Self.errorText())")
        }
        close(descriptor)
        if failure == nil, renameat(folder, temporary, folder, name) != 0 {
            failure = Failure(path: path, problem: "cannot replace the copy: \(Self.errorText())")
        }
        if let failure {
            unlinkat(folder, temporary, 0)
            throw failure
        }
    }

    /// Removes what below `folder` is not kept (paths relative to the root), and folders left
    /// empty.
    private func prune(_ folder: Int32, prefix: String, keeping: Set<String>) throws(Failure) {
        for (name, isFolder) in try entries(folder, path: directory + "/" + prefix) {
            let relative = prefix + name
            if isFolder {
                let child = openat(folder, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard child >= 0 else { continue }
                try prune(child, prefix: relative + "/", keeping: keeping)
                close(child)
                unlinkat(folder, name, AT_REMOVEDIR)  // only when empty
            } else if !keeping.contains(relative) {
                unlinkat(folder, name, 0)
            }
        }
    }

    private func entries(_ folder: Int32, path: String) throws(Failure) -> [(String, Bool)] {
        let copy = dup(folder)
        guard copy >= 0, let listing = fdopendir(copy) else {
            throw Failure(path: path, problem: "cannot list: \(Self.errorText())")
        }
        defer { closedir(listing) }
        var found: [(String, Bool)] = []
        while let entry = readdir(listing) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { found.append((name, entry.pointee.d_type == UInt8(DT_DIR))) }
        }
        return found
    }

    /// Removes a tree without following links (what was moved out of the way).
    private func removeTree(_ path: String) throws(Failure) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            unlink(path)
            return
        }
        let folder = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard folder >= 0 else { return }
        try prune(folder, prefix: "", keeping: [])
        close(folder)
        rmdir(path)
    }

    static func errorText() -> String { String(cString: strerror(errno)) }
}

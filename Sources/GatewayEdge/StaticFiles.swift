import GatewayCore
import PercentEncoding

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Maps a request path below a `static` route to a file inside its folder — and never outside:
/// percent-decoding first, then no `.` or `..` segments, no hidden files, no NUL or backslash,
/// and the real path (symbolic links resolved) must still be inside the real root.
enum StaticFiles {
    /// Files larger than this are not served (the gateway is not a file server).
    static let maxFileBytes = 16 << 20

    struct Found {
        var path: String
        var size: Int
        var modified: Int
        /// The bytes, for a page built into the binary (nil: read `path`).
        var body: [UInt8]? = nil
    }

    /// When this process started: the built-in page's modification time, for its ETag (a new
    /// binary may carry a new page).
    private static let started = Int(time(nil))

    static func resolve(_ relative: String, in settings: StaticSettings) -> Found? {
        if settings.root == StaticSettings.builtinDemo {
            // The page (the folder itself or its index file) and the hub client it loads.
            let path = relative.split(separator: "/", omittingEmptySubsequences: true)
            if path == ["wssgate.js"] {
                return Found(path: "wssgate.js", size: DemoPage.script.count, modified: started, body: DemoPage.script)
            }
            guard path.isEmpty || path == ["index.html"] else { return nil }
            return Found(path: "index.html", size: DemoPage.html.count, modified: started, body: DemoPage.html)
        }
        guard let decoded = PercentDecoding.decode(relative) else { return nil }
        let segments = decoded.split(separator: "/", omittingEmptySubsequences: true)
        for segment in segments {
            if segment.hasPrefix(".") || segment.contains("\0") || segment.contains("\\") { return nil }
        }
        guard let root = realPath(settings.root) else { return nil }
        var candidate = root + (segments.isEmpty ? "" : "/" + segments.joined(separator: "/"))
        guard var info = status(candidate) else { return nil }
        if info.isDirectory {
            candidate += "/" + settings.index
            guard let indexInfo = status(candidate) else { return nil }
            info = indexInfo
        }
        guard !info.isDirectory, let real = realPath(candidate), real.hasPrefix(root + "/") else { return nil }
        return Found(path: real, size: info.size, modified: info.modified)
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    private static func status(_ path: String) -> (isDirectory: Bool, size: Int, modified: Int)? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        let type = info.st_mode & S_IFMT
        guard type == S_IFREG || type == S_IFDIR else { return nil }
        return (type == S_IFDIR, Int(info.st_size), Int(info.st_mtim.tv_sec))
    }

    static func contentType(of path: String) -> String {
        let name = path.split(separator: "/").last.map(String.init) ?? ""
        let ext = name.split(separator: ".").count > 1 ? String(name.split(separator: ".").last!).lowercased() : ""
        switch ext {
        case "html", "htm": return "text/html; charset=utf-8"
        case "css": return "text/css; charset=utf-8"
        case "js", "mjs": return "text/javascript; charset=utf-8"
        case "json", "map": return "application/json"
        case "txt": return "text/plain; charset=utf-8"
        case "svg": return "image/svg+xml"
        case "png": return "image/png"
        case "jpg", "jpeg": return "image/jpeg"
        case "gif": return "image/gif"
        case "webp": return "image/webp"
        case "ico": return "image/x-icon"
        case "woff2": return "font/woff2"
        case "wasm": return "application/wasm"
        default: return "application/octet-stream"
        }
    }
}

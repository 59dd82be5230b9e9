import GatewayCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The configuration used when `wssgate` starts without a file: TLS on port 8443 with a
/// certificate made at start for the loopback names, an echo route, and a chat route served by
/// the Swift chat worker bundled in the same binary (`wssgate worker chat`), supervised by the
/// gateway. It is useful at once (`make run`, `docker run`) and safe to expose: the only thing
/// stored is the hub playground's history (100 publications and 64 KiB per topic), which lets
/// the demo page resume after a dropped connection or a restart — in a file where the gateway
/// has a folder for its state (`stateDirectory`), else in memory.
///
/// It goes through the same validation and the same environment/flag overrides as a file, so
/// `WSSGATE_LISTENERS_MAIN_ADDRESS=127.0.0.1:9443 wssgate` moves it.
///
/// Started by systemd's socket activation, it serves TLS on the passed sockets instead of binding
/// port 8443, so `systemd-socket-activate -l 443 wssgate` just works.
public enum EmbeddedDefault {
    public static var yaml: String { yaml(activatedSockets: []) }

    /// Where the demo page is looked for, in order: next to the binary (`../share/wssgate/www`),
    /// the installed location, and the source tree (for `make run`).
    public static func demoCandidates(executableDirectory: String, workingDirectory: String) -> [String] {
        [
            executableDirectory + "/../share/wssgate/www", "/usr/share/wssgate/www",
            workingDirectory + "/rootfs/usr/share/wssgate/www",
        ]
    }

    /// The default for a process that was passed these sockets (by `FileDescriptorName=`), with
    /// the demo page at `/`: from its folder when one was found, else the page in the binary.
    public static func yaml(
        activatedSockets: [String],
        demoRoot: String? = nil,
        historyDirectory: String? = nil
    ) -> String {
        var listeners = ""
        if activatedSockets.isEmpty {
            listeners = """
                  main:
                    address: "0.0.0.0:8443"
                    tls:
                      self_signed: true

                """
        } else {
            var used = Set<String>()
            for (index, name) in activatedSockets.enumerated() {
                // Listener names follow the sockets' names (`FileDescriptorName=https` → `https`).
                var safe = String(
                    name.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") ? $0 : "_" }
                )
                if safe.isEmpty || !used.insert(safe).inserted { safe = "socket\(index)" }
                listeners += """
                      \(safe):
                        address: "fd:\(3 + index)"
                        tls:
                          self_signed: true

                    """
            }
        }
        // The folder when there is one (an installed or edited page), else the page in the binary.
        let demo = """
              demo:
                path: /
                kind: static
                static:
                  root: "\(demoRoot ?? StaticSettings.builtinDemo)"

            """
        return "listeners:\n" + listeners + routes(executable: ownExecutable, historyDirectory: historyDirectory)
            + demo
    }

    /// Where the embedded default keeps the playground's history: systemd's `StateDirectory=`,
    /// else `/var/lib/wssgate` (the image's volume; made when it can be), else
    /// `$XDG_STATE_HOME/wssgate` or `~/.local/state/wssgate` (`make run` as a user); nil when
    /// none is a writable folder.
    public static func stateDirectory(environment: [String: String]) -> String? {
        if let state = environment["STATE_DIRECTORY"]?.split(separator: ":").first, writableFolder(String(state)) {
            return String(state)
        }
        var candidates = ["/var/lib/wssgate"]
        if let xdg = environment["XDG_STATE_HOME"], xdg.hasPrefix("/") {
            candidates.append(xdg + "/wssgate")
        } else if let home = environment["HOME"], home.hasPrefix("/"), home != "/" {
            candidates.append(home + "/.local/state/wssgate")
        }
        return candidates.first(where: writableFolder)
    }

    /// A folder this process may write in, made (with its parents) when missing.
    static func writableFolder(_ path: String) -> Bool {
        var info = stat()
        if stat(path, &info) != 0 {
            let parent = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
            guard !parent.isEmpty, writableFolder(parent), mkdir(path, 0o750) == 0 else { return false }
            return true
        }
        return info.st_mode & S_IFMT == S_IFDIR && access(path, W_OK | X_OK) == 0
    }

    /// This process's own binary, which runs the chat worker as `worker chat`: by its real path,
    /// so a renamed or relocated binary still finds itself.
    public static var ownExecutable: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return "wssgate" }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func routes(executable: String, historyDirectory: String? = nil) -> String {
        // As double-quoted YAML scalars.
        func quote(_ text: String) -> String {
            String(text.flatMap { $0 == "\\" || $0 == "\"" ? ["\\", $0] : [$0] })
        }
        let quoted = quote(executable)
        // Under `history:`, whose keys stand eight spaces in.
        let storage = historyDirectory.map { "\n        storage: file\n        directory: \"\(quote($0))\"" } ?? ""
        return """
            routes:
              echo:
                path: /echo
                kind: echo
              chat:
                path: /chat
                kind: worker
                worker:
                  command: "\(quoted)"
                  args: [worker, chat]
                  instances: 1
              hub:
                path: /hub
                kind: hub
                hub:
                  subscribe: ["*"]
                  publish: ["playground.*"]
                  history:
                    size: 100
                    max_bytes: 64KiB\(storage)

            """
    }
}

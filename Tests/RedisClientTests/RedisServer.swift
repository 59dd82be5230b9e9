import Foundation
import XCTest

/// A real `redis-server` for one test case: on a Unix socket under a short temporary directory
/// (and, when asked, a loopback port), no persistence, stopped by its PID.
final class RedisServer {
    let directory: String
    let socketPath: String
    let port: Int?
    private let process: Process

    init(password: String? = nil, tcp: Bool = false) throws {
        guard
            let binary = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].first(where: {
                FileManager.default.isExecutableFile(atPath: $0)
            })
        else {
            // A failure, not a skip: make test installs it, and a suite that skips its Redis
            // tests would pass without testing the client at all.
            throw RedisServerMissing()
        }
        directory = try Self.temporaryDirectory()
        socketPath = directory + "/redis.sock"
        port = tcp ? try Self.freePort() : nil
        var arguments = [
            "--port", String(port ?? 0), "--bind", "127.0.0.1",
            "--unixsocket", socketPath, "--unixsocketperm", "700",
            "--save", "", "--appendonly", "no", "--dir", directory, "--logfile", directory + "/redis.log",
        ]
        if let password { arguments += ["--requirepass", password] }
        process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: socketPath) {
            guard Date() < deadline, process.isRunning else {
                throw XCTSkip(
                    "redis-server did not start: \((try? String(contentsOfFile: directory + "/redis.log", encoding: .utf8)) ?? "")"
                )
            }
            usleep(20_000)
        }
    }

    var pid: Int32 { process.processIdentifier }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    deinit { stop() }

    private static func temporaryDirectory() throws -> String {
        var template = Array("/tmp/wgr-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw XCTSkip("cannot make a temporary directory") }
        return String(cString: made)
    }

    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

struct RedisServerMissing: Error, CustomStringConvertible {
    var description: String { "redis-server is not installed (make test installs it with apt)" }
}

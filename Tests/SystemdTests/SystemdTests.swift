import Foundation
import Systemd
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class SystemdTests: XCTestCase {
    /// A datagram socket standing in for systemd's notify socket.
    func receiver(abstract: Bool) throws -> (fd: Int32, name: String) {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        let name =
            abstract
            ? "@wssgate-test-\(UUID().uuidString.prefix(8))"
            : NSTemporaryDirectory() + "n\(UUID().uuidString.prefix(8)).sock"
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(name.utf8)
        if abstract { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1))
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        XCTAssertEqual(result, 0)
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return (fd, name)
    }

    func read(_ fd: Int32) -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(fd, &buffer, buffer.count, 0)
        return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : nil
    }

    func testNotifyOnPathAndAbstractSockets() throws {
        for abstract in [false, true] {
            let (fd, name) = try receiver(abstract: abstract)
            defer { close(fd) }
            let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": name])
            XCTAssertTrue(notifier.notify("READY=1\nSTATUS=serving"))
            XCTAssertEqual(read(fd), "READY=1\nSTATUS=serving")
            notifier.reloading()
            let reloading = try XCTUnwrap(read(fd))
            XCTAssertTrue(reloading.hasPrefix("RELOADING=1\nMONOTONIC_USEC="), reloading)
        }
    }

    func testNoSocketIsANoOp() {
        XCTAssertFalse(SystemdNotifier(environment: [:]).notify("READY=1"))
    }

    func testListenFileDescriptors() {
        let pid = getpid()
        let passed = ListenFileDescriptors(
            environment: ["LISTEN_FDS": "2", "LISTEN_PID": "\(pid)", "LISTEN_FDNAMES": "https:admin"],
            pid: pid
        )
        XCTAssertEqual(passed.descriptors, [.init(fd: 3, name: "https"), .init(fd: 4, name: "admin")])
        XCTAssertEqual(passed.descriptor(named: "admin")?.fd, 4)
        XCTAssertEqual(passed.descriptor(named: "3")?.name, "https")
        // Meant for another process: ignored.
        XCTAssertTrue(
            ListenFileDescriptors(environment: ["LISTEN_FDS": "1", "LISTEN_PID": "1"], pid: pid).descriptors.isEmpty
        )
    }

    func testWatchdogSettings() {
        XCTAssertEqual(
            WatchdogSettings(environment: ["WATCHDOG_USEC": "10000000"], pid: 5)?.pingIntervalNanoseconds,
            5_000_000_000
        )
        XCTAssertNil(WatchdogSettings(environment: ["WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "4"], pid: 5))
        XCTAssertNil(WatchdogSettings(environment: [:], pid: 5))
    }
}

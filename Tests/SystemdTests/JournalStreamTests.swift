import Foundation
import Systemd
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class JournalStreamTests: XCTestCase {
    func testParsesDeviceAndInode() {
        XCTAssertEqual(
            JournalStream(environment: ["JOURNAL_STREAM": "8:12345"]),
            JournalStream(device: 8, inode: 12345)
        )
        XCTAssertNil(JournalStream(environment: [:]))
        XCTAssertNil(JournalStream(environment: ["JOURNAL_STREAM": "8"]))
        XCTAssertNil(JournalStream(environment: ["JOURNAL_STREAM": "a:b"]))
    }

    /// The stream is the journal only while the descriptor is the very one systemd named: a
    /// child whose output was redirected since inherits the variable, not the stream.
    func testMatchesTheDescriptorItNames() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("journal-\(UUID().uuidString)").path
        let descriptor = open(path, O_CREAT | O_WRONLY, 0o600)
        defer {
            close(descriptor)
            unlink(path)
        }
        var info = stat()
        XCTAssertEqual(fstat(descriptor, &info), 0)
        let stream = JournalStream(environment: ["JOURNAL_STREAM": "\(info.st_dev):\(info.st_ino)"])
        XCTAssertEqual(stream?.isConnected(descriptor: descriptor), true)
        XCTAssertEqual(JournalStream(device: UInt64(info.st_dev), inode: 1).isConnected(descriptor: descriptor), false)
    }
}

import Foundation
import GatewayCore
import XCTest

@testable import wssgate

/// What `wssgate copy-credentials` leaves: each file copied below the folder, readable by the
/// folder's owner alone, copies of files no longer named removed.
final class CredentialCopierTests: XCTestCase {
    private var base = ""

    override func setUpWithError() throws {
        base = FileManager.default.temporaryDirectory.appendingPathComponent("copier-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: base + "/live", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: base + "/run", withIntermediateDirectories: true)
        try "CERT".write(toFile: base + "/live/fullchain.pem", atomically: true, encoding: .utf8)
        try "KEY".write(toFile: base + "/live/privkey.pem", atomically: true, encoding: .utf8)
        chmod(base + "/live/privkey.pem", 0o600)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: base)
    }

    func testCopiesAreTheOwnersAloneAndStaleOnesGo() throws {
        let folder = base + "/run/credentials"
        let copier = try CredentialCopier(directory: folder)
        let copies = try copier.copy([base + "/live/fullchain.pem", base + "/live/privkey.pem"])
        XCTAssertEqual(copies, [folder + base + "/live/fullchain.pem", folder + base + "/live/privkey.pem"])
        XCTAssertEqual(try String(contentsOfFile: copies[1], encoding: .utf8), "KEY")
        var info = stat()
        XCTAssertEqual(stat(copies[1], &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o440)
        var parent = stat()
        XCTAssertEqual(stat(base + "/run", &parent), 0)
        XCTAssertEqual(info.st_gid, parent.st_gid)
        XCTAssertEqual(info.st_uid, geteuid())
        XCTAssertEqual(stat(folder, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o750)

        // A renewal: the same names, new contents; a file no longer named is removed.
        try "KEY2".write(toFile: base + "/live/privkey.pem", atomically: true, encoding: .utf8)
        try copier.copy([base + "/live/privkey.pem"])
        XCTAssertEqual(try String(contentsOfFile: copies[1], encoding: .utf8), "KEY2")
        XCTAssertFalse(FileManager.default.fileExists(atPath: copies[0]))
    }

    /// The gateway owns the folder that holds the copies: whatever it put where the copies go —
    /// a link to a folder of the system's — is moved aside, never written through.
    func testALinkInThePlaceOfTheFolderIsNotFollowed() throws {
        let elsewhere = base + "/elsewhere"
        try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
        try "MINE".write(toFile: elsewhere + "/keep", atomically: true, encoding: .utf8)
        symlink(elsewhere, base + "/run/credentials")
        let copier = try CredentialCopier(directory: base + "/run/credentials")
        try copier.copy([base + "/live/privkey.pem"])
        XCTAssertEqual(try String(contentsOfFile: elsewhere + "/keep", encoding: .utf8), "MINE")
        XCTAssertFalse(FileManager.default.fileExists(atPath: elsewhere + base + "/live/privkey.pem"))
        var info = stat()
        XCTAssertEqual(lstat(base + "/run/credentials", &info), 0)
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFDIR)
    }

    func testAnUnreadableFileNamesItself() throws {
        let copier = try CredentialCopier(directory: base + "/run/credentials")
        XCTAssertThrowsError(try copier.copy([base + "/live/missing.pem"])) { error in
            XCTAssertTrue("\(error)".contains("missing.pem"), "\(error)")
        }
    }

    func testTheFilesOfAConfiguration() {
        var tls = TLSSettings(source: .files(certificate: "/c.pem", key: "/k.pem"))
        tls.additional = [.init(name: "api", certificate: "/api.pem", key: "/api.key")]
        tls.clientCA = "/ca.pem"
        var configuration = GatewayConfiguration(
            listeners: [ListenerConfiguration(name: "public", address: .systemd(name: "https"), tls: tls)],
            routes: []
        )
        configuration.admin.tokenFile = "/token"
        XCTAssertEqual(
            CredentialCopier.files(of: configuration),
            ["/c.pem", "/k.pem", "/api.pem", "/api.key", "/ca.pem", "/token"]
        )
    }
}

import GatewayCore
import XCTest

/// Where the gateway reads a secret file when a privileged step copied it.
final class CredentialFilesTests: XCTestCase {
    func testACopyIsReadWhereItExistsAndTheOriginalOtherwise() {
        let files = CredentialFiles(directory: "/run/wssgate/credentials")
        let key = "/etc/letsencrypt/live/example.com/privkey.pem"
        let copy = "/run/wssgate/credentials/etc/letsencrypt/live/example.com/privkey.pem"
        XCTAssertEqual(CredentialFiles.copyPath(for: key, in: "/run/wssgate/credentials/"), copy)
        XCTAssertEqual(files.path(for: key, exists: { $0 == copy }), copy)
        XCTAssertEqual(files.path(for: key, exists: { _ in false }), key)
        XCTAssertEqual(CredentialFiles(directory: nil).path(for: key, exists: { _ in true }), key)
        XCTAssertNil(CredentialFiles(environment: [CredentialFiles.environmentVariable: ""]).directory)
    }

    func testTheKeysThatNameSecretFiles() {
        for key in [
            "listeners.public.tls.certificate", "listeners.public.tls.key", "listeners.public.tls.client_ca",
            "listeners.public.tls.certificates.api.certificate", "listeners.public.tls.certificates.api.key",
            "admin.token_file", "routes.app.auth.hs256_secret_file", "routes.app.auth.public_keys",
            "routes.app.auth.jwks_file",
        ] {
            XCTAssertTrue(CredentialFiles.namesFile(key.split(separator: ".").map(String.init)), key)
        }
        for key in [
            "listeners.public.address", "listeners.public.tls.acme.ca_bundle", "admin.token", "routes.app.path",
            "routes.app.auth.hs256_secret", "routes.app.static.root",
        ] {
            XCTAssertFalse(CredentialFiles.namesFile(key.split(separator: ".").map(String.init)), key)
        }
    }
}

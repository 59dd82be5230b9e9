import GatewayTLS
import XCTest

/// The hosts a redirect may name: a certificate's DNS names and addresses, as they are written
/// in a Host header.
final class CertificateHostsTests: XCTestCase {
    func testNamesAddressesAndWildcards() {
        let hosts = CertificateHosts(names: ["GW.example", "*.api.example", "127.0.0.1", "::1"])
        XCTAssertTrue(hosts.covers("gw.example"))
        XCTAssertTrue(hosts.covers("GW.EXAMPLE"))
        XCTAssertTrue(hosts.covers("eu.api.example"))
        XCTAssertFalse(hosts.covers("api.example"))
        XCTAssertFalse(hosts.covers("a.b.api.example"))
        XCTAssertTrue(hosts.covers("127.0.0.1"))
        XCTAssertTrue(hosts.covers("[::1]"))
        XCTAssertTrue(hosts.covers("[0:0:0:0:0:0:0:1]"), "one address, however written")
        XCTAssertFalse(hosts.covers("::1"), "an IPv6 host is bracketed")
        XCTAssertFalse(hosts.covers("127.0.0.2"))
        XCTAssertFalse(hosts.covers("[::2]"))
        XCTAssertFalse(hosts.covers("gw.example.evil"))
        XCTAssertFalse(hosts.covers(""))
    }

    /// A certificate read from PEM and one generated both say what they are for.
    func testCertificatesNameTheirHosts() throws {
        let generated = try CertificateMaterial.selfSigned(names: ["localhost", "127.0.0.1"])
        XCTAssertTrue(generated.hosts.covers("localhost"))
        XCTAssertTrue(generated.hosts.covers("127.0.0.1"))
        XCTAssertFalse(generated.hosts.covers("[::1]"))
        var union = generated.hosts
        union.formUnion(CertificateHosts(names: ["other.test", "localhost"]))
        XCTAssertEqual(union.dnsNames, ["localhost", "other.test"])
    }
}

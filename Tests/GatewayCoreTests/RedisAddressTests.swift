import GatewayCore
import XCTest

/// `cluster.redis` as written: the parts it names, the addresses refused, and the password kept
/// out of what is printed.
final class RedisAddressTests: XCTestCase {
    func testParsingAndRedaction() throws {
        XCTAssertEqual(
            try RedisAddress(parsing: "redis://127.0.0.1:6380/3"),
            RedisAddress(location: .tcp(host: "127.0.0.1", port: 6380), database: 3)
        )
        XCTAssertEqual(
            try RedisAddress(parsing: "redis://user:secret@redis.internal"),
            RedisAddress(location: .tcp(host: "redis.internal", port: 6379), user: "user", password: "secret")
        )
        XCTAssertEqual(
            try RedisAddress(parsing: "redis://[::1]:7000/1"),
            RedisAddress(location: .tcp(host: "::1", port: 7000), database: 1)
        )
        XCTAssertEqual(
            try RedisAddress(parsing: "unix:/run/redis.sock?db=2&password=x"),
            RedisAddress(location: .unix(path: "/run/redis.sock"), database: 2, password: "x")
        )
        for bad in [
            "http://x", "redis://", "redis://h:0", "redis://h:70000", "redis://h/x", "unix:relative", "unix:/p?db=-1",
            "unix:/p?color=red",
        ] {
            XCTAssertThrowsError(try RedisAddress(parsing: bad), bad) {
                XCTAssertEqual(($0 as? ConfigurationError)?.key, "cluster.redis")
            }
        }
        XCTAssertEqual(RedisAddress.redacted("redis://user:secret@h:1/0"), "redis://user:***@h:1/0")
        XCTAssertEqual(RedisAddress.redacted("unix:/p?db=1&password=secret"), "unix:/p?db=1&password=***")
        XCTAssertFalse("\(try RedisAddress(parsing: "redis://:secret@h"))".contains("secret"))
    }
}

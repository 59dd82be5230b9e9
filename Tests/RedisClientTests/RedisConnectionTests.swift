import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RedisClient
import XCTest

/// Against a real redis-server: commands, RESP3 types, pub/sub on the same connection, AUTH,
/// SELECT, timeouts, and a server that goes away.
final class RedisConnectionTests: XCTestCase {
    func testCommandsAndRESP3TypesOverAUnixSocket() async throws {
        let server = try RedisServer()
        defer { server.stop() }
        let redis = try await RedisConnection.connect(
            to: RedisEndpoint(address: .unix(path: server.socketPath), database: 2)
        )
        let reply1 = try await redis.send(["SET", "greeting", "hello"])
        XCTAssertEqual(reply1, .simpleString("OK"))
        let reply2 = try await redis.send(["GET", "greeting"]).string
        XCTAssertEqual(reply2, "hello")
        let reply3 = try await redis.send(["GET", "missing"])
        XCTAssertEqual(reply3, .null)
        let reply4 = try await redis.send(["INCRBY", "counter", "41"]).integer
        XCTAssertEqual(reply4, 41)
        try await redis.send(["HSET", "h", "a", "1", "b", "2"])
        guard case .map(let pairs) = try await redis.send(["HGETALL", "h"]) else {
            return XCTFail("HGETALL is a map in RESP3")
        }
        XCTAssertEqual(
            Dictionary(uniqueKeysWithValues: pairs.map { ($0.0.string!, $0.1.string!) }),
            ["a": "1", "b": "2"]
        )
        try await redis.send(["SADD", "s", "x", "y"])
        guard case .set(let members) = try await redis.send(["SMEMBERS", "s"]) else {
            return XCTFail("SMEMBERS is a set in RESP3")
        }
        XCTAssertEqual(Set(members.compactMap(\.string)), ["x", "y"])
        let reply5 = try await redis.send(["ZADD", "z", "1.5", "m"]).integer
        XCTAssertEqual(reply5, 1)
        let reply6 = try await redis.send(["ZSCORE", "z", "m"])
        XCTAssertEqual(reply6, .double(1.5))
        // SELECT 2 took effect: database 0 does not have the key.
        let reply7 = try await redis.send(["SELECT", "0"])
        XCTAssertEqual(reply7, .simpleString("OK"))
        let reply8 = try await redis.send(["EXISTS", "greeting"]).integer
        XCTAssertEqual(reply8, 0)
        // A binary value survives as bytes.
        let binary = ByteBuffer(bytes: [0, 255, 13, 10, 36])
        try await redis.send([ByteBuffer(string: "SET"), ByteBuffer(string: "bin"), binary])
        let reply9 = try await redis.send(["GET", "bin"]).bytes
        XCTAssertEqual(reply9, binary)
        await redis.close()
    }

    func testErrorRepliesThrowAndTheConnectionCarriesOn() async throws {
        let server = try RedisServer()
        defer { server.stop() }
        let redis = try await RedisConnection.connect(to: RedisEndpoint(address: .unix(path: server.socketPath)))
        try await redis.send(["SET", "text", "abc"])
        do {
            try await redis.send(["INCR", "text"])
            XCTFail("INCR on a string must fail")
        } catch {
            XCTAssertEqual(error.code, .server)
            XCTAssertTrue(error.message.contains("not an integer"), error.message)
        }
        let reply10 = try await redis.send(["PING"])
        XCTAssertEqual(reply10, .simpleString("PONG"))
    }

    func testPublishAndSubscribeOnOneConnection() async throws {
        let server = try RedisServer(tcp: true)
        defer { server.stop() }
        let received = NIOLockedValueBox<[[String]]>([])
        let subscriber = try await RedisConnection.connect(
            to: RedisEndpoint(address: .tcp(host: "127.0.0.1", port: server.port!))
        ) { push in
            received.withLockedValue { $0.append(push.map { $0.string ?? "?" }) }
        }
        try await subscriber.subscribe("SUBSCRIBE", ["news", "sport"])
        try await subscriber.subscribe("PSUBSCRIBE", ["t:*"])
        // Commands still work while subscribed (RESP3).
        let reply11 = try await subscriber.send(["PING"])
        XCTAssertEqual(reply11, .simpleString("PONG"))
        let publisher = try await RedisConnection.connect(to: RedisEndpoint(address: .unix(path: server.socketPath)))
        let reply12 = try await publisher.send(["PUBLISH", "news", "one"]).integer
        XCTAssertEqual(reply12, 1)
        let reply13 = try await publisher.send(["PUBLISH", "t:prices", "two"]).integer
        XCTAssertEqual(reply13, 1)
        let reply14 = try await publisher.send(["PUBLISH", "nobody", "three"]).integer
        XCTAssertEqual(reply14, 0)
        try await waitUntil { received.withLockedValue { $0.count } == 2 }
        XCTAssertEqual(
            received.withLockedValue { $0 },
            [["message", "news", "one"], ["pmessage", "t:*", "t:prices", "two"]]
        )
    }

    func testAuthentication() async throws {
        let server = try RedisServer(password: "pa55-word")
        defer { server.stop() }
        let good = try await RedisConnection.connect(
            to: RedisEndpoint(address: .unix(path: server.socketPath), password: "pa55-word")
        )
        let reply15 = try await good.send(["PING"])
        XCTAssertEqual(reply15, .simpleString("PONG"))
        do {
            _ = try await RedisConnection.connect(
                to: RedisEndpoint(address: .unix(path: server.socketPath), password: "wrong")
            )
            XCTFail("a wrong password must be refused")
        } catch {
            XCTAssertEqual(error.code, .server)
            XCTAssertTrue(error.message.contains("WRONGPASS"), error.message)
        }
    }

    func testACommandWithoutAnAnswerTimesOutAndClosesTheConnection() async throws {
        let server = try RedisServer()
        defer { server.stop() }
        let redis = try await RedisConnection.connect(
            to: RedisEndpoint(address: .unix(path: server.socketPath)),
            configuration: .init(commandTimeout: .milliseconds(300))
        )
        let started = ContinuousClock.now
        do {
            // BLPOP blocks for 5 s on an empty list: longer than the command timeout.
            try await redis.send(["BLPOP", "empty", "5"])
            XCTFail("must time out")
        } catch {
            XCTAssertEqual(error.code, .timeout)
        }
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(3))
        try await waitUntil { !redis.isActive }
        do {
            try await redis.send(["PING"])
            XCTFail("a timed-out connection is closed")
        } catch {
            XCTAssertEqual(error.code, .connection)
        }
    }

    func testTheServerGoingAwayFailsWhatWaitsAndRefusesNewConnections() async throws {
        let server = try RedisServer()
        let redis = try await RedisConnection.connect(to: RedisEndpoint(address: .unix(path: server.socketPath)))
        let path = server.socketPath
        server.stop()
        try await waitUntil { !redis.isActive }
        do {
            try await redis.send(["PING"])
            XCTFail("the connection is gone")
        } catch {
            XCTAssertEqual(error.code, .connection)
        }
        do {
            _ = try await RedisConnection.connect(to: RedisEndpoint(address: .unix(path: path)))
            XCTFail("nothing listens any more")
        } catch {
            XCTAssertEqual(error.code, .connection)
        }
    }

    private func waitUntil(_ condition: @escaping @Sendable () -> Bool, timeout: Duration = .seconds(5)) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else { return XCTFail("condition not met in time") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

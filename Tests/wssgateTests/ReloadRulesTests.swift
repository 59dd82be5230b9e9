import GatewayCore
import NIOCore
import XCTest

@testable import wssgate

/// What a reload may change in place, and what it refuses (the end-to-end suite reloads the
/// running binary; these are the rules it goes by).
final class ReloadRulesTests: XCTestCase {
    private func configuration(threads: Int = 0, routes: [RouteConfiguration] = []) -> GatewayConfiguration {
        GatewayConfiguration(
            server: ServerSettings(threads: threads),
            listeners: [ListenerConfiguration(name: "main", address: .tcp(host: "127.0.0.1", port: 0))],
            routes: routes
        )
    }

    func testTheNumberOfEventLoopsNeedsARestart() {
        XCTAssertEqual(
            ReloadService.restartOnlyChanges(from: configuration(threads: 2), to: configuration(threads: 4)),
            ["server.threads"]
        )
        XCTAssertEqual(ReloadService.restartOnlyChanges(from: configuration(), to: configuration()), [])
    }

    func testAWorkerRouteKeepsItsPoolOnlyWhenItsWorkersAreTheSame() {
        let worker = RouteConfiguration(
            name: "w",
            path: "/w",
            backend: .worker(
                WorkerSettings(source: .supervised(command: "/bin/w", arguments: [], environment: [], instances: 2))
            )
        )
        var moreInstances = worker
        moreInstances.backend = .worker(
            WorkerSettings(source: .supervised(command: "/bin/w", arguments: [], environment: [], instances: 3))
        )
        var otherOrigins = worker
        otherOrigins.origins = OriginPolicy(allowed: ["https://example.org"])
        var biggerMessages = worker
        biggerMessages.limits.maxMessageBytes *= 2
        XCTAssertTrue(RouteServices.canKeep(worker, for: otherOrigins), "read per connection")
        XCTAssertFalse(RouteServices.canKeep(worker, for: moreInstances))
        XCTAssertFalse(RouteServices.canKeep(worker, for: biggerMessages), "the link's frame limit comes from it")
        var echo = worker
        echo.backend = .echo
        XCTAssertFalse(RouteServices.canKeep(worker, for: echo))
    }

    func testTheOpenFileLimitIsRaisedToTheHardOne() {
        XCTAssertGreaterThanOrEqual(OpenFileLimit.raise(), 1024)
    }
}

import GatewayCore
import GatewayHub
import GatewayWebSocket
import NIOCore
import NIOHTTP1
import NIOPosix
import XCTest

@testable import GatewayAdmin

/// `POST /v1/reload`: answered when the reload is done, 200 with what changed or 409 with why.
final class AdminReloadTests: XCTestCase {
    private func call(_ api: AdminAPI, _ method: HTTPMethod, _ uri: String) async throws -> (Int, String) {
        let response = try await api.handle(
            AdminRequest(method: method, uri: uri, headers: [:], body: ByteBuffer()),
            on: MultiThreadedEventLoopGroup.singleton.next()
        ).get()
        return (Int(response.status.code), String(buffer: response.body))
    }

    func testAnAppliedReloadSaysWhatChanged() async throws {
        let api = AdminAPI(
            hub: Hub(),
            sessions: SessionDirectory(),
            token: nil,
            reload: { .applied(["routes.chat added", "log.level info → debug"]) }
        )
        let (status, body) = try await call(api, .POST, "/v1/reload")
        XCTAssertEqual(status, 200)
        XCTAssertEqual(body, #"{"changes":["routes.chat added","log.level info → debug"],"reloaded":true}"#)
    }

    func testARefusedReloadIsAConflictWithItsReason() async throws {
        let api = AdminAPI(
            hub: Hub(),
            sessions: SessionDirectory(),
            token: nil,
            reload: { .refused("these changes need a restart: server.threads") }
        )
        let (status, body) = try await call(api, .POST, "/v1/reload")
        XCTAssertEqual(status, 409)
        XCTAssertEqual(
            body,
            #"{"error":{"code":"reload_refused","field":null,"message":"these changes need a restart: server.threads"}}"#
        )
        let (method, _) = try await call(api, .GET, "/v1/reload")
        XCTAssertEqual(method, 405)
        let (query, _) = try await call(api, .POST, "/v1/reload?now=1")
        XCTAssertEqual(query, 400)
    }

    func testAGatewayWithoutReloadSaysSo() async throws {
        let api = AdminAPI(hub: Hub(), sessions: SessionDirectory(), token: nil)
        let (status, body) = try await call(api, .POST, "/v1/reload")
        XCTAssertEqual(status, 503)
        XCTAssertTrue(body.contains("reload_unavailable"), body)
    }
}

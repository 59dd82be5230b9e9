import GatewayHub
import GatewayWebSocket
import NIOCore
import NIOEmbedded
import NIOHTTP1
import XCTest

@testable import GatewayAdmin

final class AdminAPITests: XCTestCase {
    let loop = EmbeddedEventLoop()

    func call(
        _ api: AdminAPI,
        _ method: HTTPMethod,
        _ uri: String,
        body: String = "",
        headers: HTTPHeaders = [:]
    ) throws -> (Int, String, HTTPHeaders) {
        let response = try api.handle(
            AdminRequest(method: method, uri: uri, headers: headers, body: ByteBuffer(string: body)),
            on: loop
        ).wait()
        return (Int(response.status.code), String(buffer: response.body), response.headers)
    }

    func testQueryDecoding() {
        let (path, query) = AdminAPI.split("/v1/connections/7?code=4001&reason=kicked+out%21&flag")
        XCTAssertEqual(path, "/v1/connections/7")
        XCTAssertEqual(query.map(\.0), ["code", "reason", "flag"])
        XCTAssertEqual(query.map(\.1), ["4001", "kicked out!", ""])
    }

    func testTimestampIsRFC3339UTCWithMilliseconds() {
        XCTAssertEqual(AdminAPI.timestamp(millis: 0), "1970-01-01T00:00:00.000Z")
        XCTAssertEqual(AdminAPI.timestamp(millis: 1_764_000_000_123), "2025-11-24T16:00:00.123Z")
    }

    func testTokenComparison() {
        XCTAssertTrue(AdminAPI.constantTimeEqual(Array("Bearer abc".utf8), Array("Bearer abc".utf8)))
        XCTAssertFalse(AdminAPI.constantTimeEqual(Array("Bearer abd".utf8), Array("Bearer abc".utf8)))
        XCTAssertFalse(AdminAPI.constantTimeEqual(Array("Bearer ab".utf8), Array("Bearer abc".utf8)))
    }

    func testPublishReachesSubscribersAndErrorsNameTheField() throws {
        final class Collector: HubSubscriber, @unchecked Sendable {
            let subscriberID: UInt64 = 1
            var received: [WebSocketMessage] = []
            func deliver(_ message: WebSocketMessage) { received.append(message) }
        }
        let hub = Hub()
        let collector = Collector()
        hub.subscribe(collector, to: "a.*")
        let api = AdminAPI(hub: hub, sessions: SessionDirectory(), token: nil)

        var (status, body, _) = try call(api, .POST, "/v1/publish", body: #"{"topic":"a.b","data":[1]}"#)
        XCTAssertEqual(status, 200)
        XCTAssertEqual(body, #"{"delivered":1,"position":null,"topic":"a.b"}"#)
        XCTAssertEqual(String(buffer: collector.received[0].data), #"{"data":[1],"op":"message","topic":"a.b"}"#)

        (status, body, _) = try call(api, .POST, "/v1/publish", body: #"{"topic":"a.b","binary":"%%%"}"#)
        XCTAssertEqual(status, 400)
        XCTAssertEqual(
            body,
            #"{"error":{"code":"invalid_field","field":"binary","message":"binary must be a base64 string"}}"#
        )

        let headers: HTTPHeaders
        (status, _, headers) = try call(api, .GET, "/v1/publish")
        XCTAssertEqual(status, 405)
        XCTAssertEqual(headers.first(name: "allow"), "POST")
    }

    func testTokenIsRequiredWhenConfigured() throws {
        let api = AdminAPI(hub: Hub(), sessions: SessionDirectory(), token: "0123456789abcdef")
        var (status, _, headers) = try call(api, .GET, "/v1/topics")
        XCTAssertEqual(status, 401)
        XCTAssertEqual(headers.first(name: "www-authenticate"), #"Bearer realm="wssgate-admin""#)
        (status, _, _) = try call(api, .GET, "/v1/topics", headers: ["Authorization": "Bearer 0123456789abcdef"])
        XCTAssertEqual(status, 200)
    }
}

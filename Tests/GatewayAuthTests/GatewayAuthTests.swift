import GatewayAuth
import GatewayCore
import JWTKit
import NIOCore
import XCTest

final class GatewayAuthTests: XCTestCase {
    static let secret = "a-secret-of-at-least-thirty-two-bytes!!"

    struct Payload: JWTPayload {
        var sub: String
        var exp: Double
        var aud: String
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    func sign(_ payload: Payload, secret: String = secret) async throws -> String {
        let keys = await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        return try await keys.sign(payload)
    }

    func testTokenSourcesInOrder() {
        var settings = JWTSettings(secrets: [Self.secret])
        let headers = [
            ("authorization", "Bearer from-header"), ("cookie", "a=1; access_token=from-cookie"),
            ("sec-websocket-protocol", "app.v1, bearer.from-protocol"),
        ]
        XCTAssertEqual(
            TokenExtractor.token(in: headers, target: "/x?access_token=from%2Dquery", settings: settings),
            "from-header"
        )
        settings.sources = [.protocol, .header]
        XCTAssertEqual(TokenExtractor.token(in: headers, target: "/x", settings: settings), "from-protocol")
        settings.sources = [.cookie]
        XCTAssertEqual(TokenExtractor.token(in: headers, target: "/x", settings: settings), "from-cookie")
        settings.sources = [.query]
        XCTAssertEqual(
            TokenExtractor.token(in: headers, target: "/x?b=2&access_token=from%2Dquery", settings: settings),
            "from-query"
        )
        XCTAssertNil(TokenExtractor.token(in: [], target: "/x", settings: settings))
    }

    func testVerifiesSignatureExpiryAndAudience() async throws {
        let settings = JWTSettings(secrets: [Self.secret], audiences: ["gw"], leeway: .seconds(5))
        let verifier = try await JWTVerifier(settings: settings, routeKey: "routes.r.auth")
        let now = 1_800_000_000.0
        let good = try await sign(Payload(sub: "u1", exp: now + 60, aud: "gw"))
        let verified = try await verifier.verify(good, now: now)
        XCTAssertEqual(verified.subject, "u1")
        XCTAssertTrue(verified.claimsJSON.contains("\"sub\":\"u1\""))

        func failure(_ token: String, at time: Double = now) async -> AuthFailure.Code? {
            do {
                _ = try await verifier.verify(token, now: time)
                return nil
            } catch {
                return error.code
            }
        }
        let expiredCode = await failure(good, at: now + 70)
        XCTAssertEqual(expiredCode, .expired)
        let withinLeeway = await failure(good, at: now + 63)
        XCTAssertNil(withinLeeway)
        let audienceCode = await failure(try await sign(Payload(sub: "u1", exp: now + 60, aud: "elsewhere")))
        XCTAssertEqual(audienceCode, .audience)
        let signatureCode = await failure(
            try await sign(
                Payload(sub: "u1", exp: now + 60, aud: "gw"),
                secret: "another-secret-of-thirty-two-bytes-or-more"
            )
        )
        XCTAssertEqual(signatureCode, .signature)
        let malformedCode = await failure("abc")
        XCTAssertEqual(malformedCode, .malformed)
        var critical = JWTHeader()
        critical.crit = ["exp"]
        let keys = await JWTKeyCollection().add(hmac: HMACKey(from: Self.secret), digestAlgorithm: .sha256)
        let criticalCode = await failure(
            try await keys.sign(Payload(sub: "u1", exp: now + 60, aud: "gw"), header: critical)
        )
        XCTAssertEqual(criticalCode, .critical, "a signed token with crit is refused")
    }
}

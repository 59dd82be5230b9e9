import GatewayCore
import GatewayTLS
import NIOHTTP1
import XCTest

@testable import GatewayEdge

/// Every answer a plain request can get, from its head alone.
final class RequestRouterTests: XCTestCase {
    private let routes = RouteTable([
        RouteConfiguration(name: "echo", path: "/echo", backend: .echo),
        RouteConfiguration(name: "demo", path: "/demo/", backend: .static(StaticSettings(root: "/srv/demo"))),
    ])

    private func router(
        phase: GatewayState.Phase = .ready,
        degradation: GatewayState.Degradation? = nil,
        redirect: Int? = nil,
        challenges: [String: String]? = nil
    ) -> RequestRouter {
        RequestRouter(
            routes: routes,
            redirect: redirect.map { port in
                HTTPSRedirect(port: port) { CertificateHosts(names: ["example.org", "*.gw.test", "::1"]) }
            },
            acmeChallenge: challenges.map { table in { table[$0] } },
            health: { .init(phase: phase, degradation: degradation) }
        )
    }

    /// A request as a client sends it: with its Host, unless `headers` names one.
    private func head(_ uri: String, _ method: HTTPMethod = .GET, _ headers: HTTPHeaders = [:]) -> HTTPRequestHead {
        var headers = headers
        if !headers.contains(name: "host") { headers.add(name: "Host", value: "gw.test") }
        return HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: headers)
    }

    /// RFC 9112 §3.2: an HTTP/1.1 request names its host exactly once; none or two is 400.
    func testARequestWithoutAHostOrWithTwoIs400() {
        for headers: HTTPHeaders in [["Host": "a"], [:]] {
            var request = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/livez", headers: headers)
            if headers.contains(name: "host") { request.headers.add(name: "Host", value: "b") }
            let answer = response(router().decide(request))
            XCTAssertEqual(answer?.status, .badRequest)
            XCTAssertEqual(answer?.keepAlive, false)
        }
        let old = HTTPRequestHead(version: .http1_0, method: .GET, uri: "/livez", headers: [:])
        XCTAssertEqual(response(router().decide(old))?.status, .ok, "HTTP/1.0 needs no Host")
    }

    private func response(_ decision: RequestRouter.Decision) -> RequestRouter.Response? {
        if case .respond(let response) = decision { return response }
        return nil
    }

    func testHealthChecksFollowTheGatewaysPhase() {
        XCTAssertEqual(response(router().decide(head("/livez")))?.body, "ok\n")
        XCTAssertEqual(response(router().decide(head("/readyz")))?.body, "ready\n")
        let starting = response(router(phase: .starting).decide(head("/readyz?x=1")))
        XCTAssertEqual(starting?.status, .serviceUnavailable)
        XCTAssertEqual(starting?.headers["Retry-After"], ["1"])
        XCTAssertEqual(starting?.body, "starting\n")
        let soft = GatewayState.Degradation(reason: "redis", blocksReadiness: false)
        XCTAssertEqual(response(router(degradation: soft).decide(head("/readyz")))?.status, .ok)
        XCTAssertEqual(response(router(degradation: soft).decide(head("/readyz")))?.body, "degraded\n")
        let hard = GatewayState.Degradation(reason: "acme", blocksReadiness: true)
        XCTAssertEqual(response(router(degradation: hard).decide(head("/readyz")))?.status, .serviceUnavailable)
        let headOnly = response(router().decide(head("/livez", .HEAD)))
        XCTAssertEqual(headOnly?.headOnly, true)
    }

    /// The one rule of every readable path: GET or HEAD, else 405 with `Allow`.
    func testOnlyGetAndHeadReadAnything() {
        for uri in ["/livez", "/readyz", "/demo/index.html", "/.well-known/acme-challenge/t"] {
            let answer = response(router(challenges: [:]).decide(head(uri, .POST)))
            XCTAssertEqual(answer?.status, .methodNotAllowed, uri)
            XCTAssertEqual(answer?.headers["Allow"], ["GET, HEAD"], uri)
            XCTAssertEqual(answer?.headOnly, false, uri)
        }
        let route = response(router().decide(head("/echo", .DELETE)))
        XCTAssertEqual(route?.status, .methodNotAllowed)
        XCTAssertEqual(route?.headers["Allow"], ["GET"])
    }

    func testAWebSocketPathAsksForAnUpgradeAndUnknownPathsAre404() {
        let plain = response(router().decide(head("/echo")))
        XCTAssertEqual(plain?.status, .upgradeRequired)
        XCTAssertEqual(plain?.headers["Sec-WebSocket-Version"], ["13"])
        XCTAssertEqual(response(router().decide(head("/nothing")))?.status, .notFound)
    }

    func testStaticFilesAreLeftToTheHandlerWithTheirRoute() {
        guard
            case .file(let settings, let relative, let ifNoneMatch, let keepAlive, let headOnly) = router().decide(
                head("/demo/app.js", .HEAD, ["If-None-Match": "\"1-2\""])
            )
        else { return XCTFail("a file") }
        XCTAssertEqual(settings.root, "/srv/demo")
        XCTAssertEqual(relative, "/app.js")
        XCTAssertEqual(ifNoneMatch, "\"1-2\"")
        XCTAssertTrue(keepAlive)
        XCTAssertTrue(headOnly)
    }

    /// A body nothing reads leaves the connection unfit for another request.
    func testABodyEndsKeepAlive() {
        XCTAssertEqual(response(router().decide(head("/livez", .GET, ["Content-Length": "5"])))?.keepAlive, false)
        XCTAssertEqual(response(router().decide(head("/livez", .GET, ["Content-Length": "0"])))?.keepAlive, true)
        XCTAssertEqual(
            response(router().decide(head("/nothing", .GET, ["Transfer-Encoding": "chunked"])))?.keepAlive,
            false
        )
    }

    func testAPlainListenerRedirectsAllButHealthChecks() {
        let redirect = router(redirect: 8443)
        let moved = response(redirect.decide(head("/echo?a=1", .GET, ["Host": "Example.org:8080"])))
        XCTAssertEqual(moved?.status, .permanentRedirect)
        XCTAssertEqual(moved?.headers["Location"], ["https://example.org:8443/echo?a=1"])
        let standard = response(router(redirect: 443).decide(head("/", .GET, ["Host": "[0:0::1]:80"])))
        XCTAssertEqual(standard?.headers["Location"], ["https://[0:0::1]/"])
        XCTAssertEqual(response(redirect.decide(head("/livez", .GET, ["Host": "elsewhere.test"])))?.status, .ok)
        let upgrade = response(
            redirect.decide(
                head("/echo", .GET, ["Host": "eu.gw.test", "Upgrade": "websocket", "Connection": "Upgrade"])
            )
        )
        XCTAssertEqual(upgrade?.status, .permanentRedirect)
        XCTAssertEqual(upgrade?.headers["Location"], ["https://eu.gw.test:8443/echo"])
        XCTAssertEqual(upgrade?.keepAlive, false, "the client wanted this connection to be a WebSocket")
    }

    /// The redirect names only hosts the gateway has certificates for: any other Host is 421, a
    /// target that would turn the host into userinfo (or name another host) is 400.
    func testTheRedirectIsNotOpen() {
        let redirect = router(redirect: 443)
        for host in ["evil.test", "gw.test", "a.b.gw.test", "127.0.0.1", "example.org.evil.test", "example.org/x", ""] {
            let answer = response(redirect.decide(head("/", .GET, ["Host": host])))
            XCTAssertEqual(answer?.status, .misdirectedRequest, host)
            XCTAssertNil(answer?.headers.first(name: "Location"), host)
        }
        for target in ["@evil.test/", "//evil.test/", "https://evil.test/", "*"] {
            let answer = response(redirect.decide(head(target, .GET, ["Host": "example.org"])))
            XCTAssertEqual(answer?.status, .badRequest, target)
        }
    }

    func testACMEChallengesAreAnsweredBeforeTheRedirect() {
        let router = router(redirect: 443, challenges: ["tok": "tok.thumb"])
        let found = response(router.decide(head("/.well-known/acme-challenge/tok")))
        XCTAssertEqual(found?.status, .ok)
        XCTAssertEqual(found?.body, "tok.thumb")
        XCTAssertEqual(response(router.decide(head("/.well-known/acme-challenge/other")))?.status, .notFound)
    }

    func testUpgradesAreNegotiatedAndRefusalsClose() {
        let headers: HTTPHeaders = [
            "Host": "localhost", "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        ]
        guard case .upgrade(let acceptance) = router().decide(head("/echo", .GET, headers)) else {
            return XCTFail("an upgrade")
        }
        XCTAssertEqual(acceptance.route.name, "echo")
        var withBody = headers
        withBody.add(name: "Content-Length", value: "3")
        let refused = response(router().decide(head("/echo", .GET, withBody)))
        XCTAssertEqual(refused?.status, .badRequest)
        XCTAssertEqual(refused?.keepAlive, false)
        let unknown = response(router().decide(head("/nothing", .GET, headers)))
        XCTAssertEqual(unknown?.status, .notFound)
        XCTAssertEqual(unknown?.keepAlive, false)
    }
}

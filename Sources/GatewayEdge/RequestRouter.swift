import GatewayCore
import GatewayTLS
import NIOHTTP1

/// Decides the answer to one request head, with no I/O: ACME's HTTP-01 tokens, the redirect of
/// a plain listener to https, health checks, WebSocket routes, static files and 404. What it
/// returns, `HTTPConnectionHandler` carries out (a response, an upgrade, a file read).
///
/// Kept apart from the handler so every answer a plain request can get is tested from a head
/// alone, and so the rules that several paths share (GET or HEAD only, no keep-alive after a
/// body we do not read) are written once.
struct RequestRouter {
    /// A small plain-text answer.
    struct Response: Equatable {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        var body: String
        var keepAlive: Bool
        /// A HEAD request: the headers of the answer, not its body.
        var headOnly: Bool
    }

    enum Decision {
        case respond(Response)
        case upgrade(UpgradeNegotiator.Acceptance)
        /// A file of a `static` route, if it exists (else 404).
        case file(StaticSettings, relative: String, ifNoneMatch: String?, keepAlive: Bool, headOnly: Bool)
    }

    /// What `/readyz` reports.
    struct Health {
        var phase: GatewayState.Phase
        var degradation: GatewayState.Degradation?
    }

    var routes: RouteTable
    /// A plain listener that sends everything but health checks to https.
    var redirect: HTTPSRedirect?
    /// The key authorization of a pending HTTP-01 challenge, by token (listeners that answer
    /// ACME's challenges).
    var acmeChallenge: ((String) -> String?)?
    /// Read only for `/readyz`.
    var health: () -> Health

    func decide(_ request: HTTPRequestHead) -> Decision {
        let isUpgrade = UpgradeNegotiator.isUpgradeRequest(request)
        let path = RouteTable.path(of: request.uri)
        // A request with a body we drop leaves the connection unreliable for another request.
        let keepAlive = request.isKeepAlive && !request.hasBody
        func answer(_ status: HTTPResponseStatus, _ body: String, headers: HTTPHeaders = [:]) -> Decision {
            .respond(
                Response(status: status, headers: headers, body: body, keepAlive: keepAlive, headOnly: request.isHead)
            )
        }
        /// Only GET and HEAD read anything here.
        func onlyGet(allow: String = "GET, HEAD", _ body: String = "use GET\n") -> Decision? {
            guard request.method != .GET, !request.isHead else { return nil }
            return .respond(
                Response(
                    status: .methodNotAllowed,
                    headers: ["Allow": allow],
                    body: body,
                    keepAlive: keepAlive,
                    headOnly: false
                )
            )
        }

        // One Host, no more and no fewer (RFC 9112 §3.2): which site is meant must not be a guess,
        // nor a choice between two answers that a cache and the gateway would make differently.
        if request.version.major == 1, request.version.minor >= 1, request.headers["host"].count != 1 {
            return .respond(
                Response(
                    status: .badRequest,
                    headers: [:],
                    body: "a request names its host in exactly one Host header\n",
                    keepAlive: false,
                    headOnly: false
                )
            )
        }
        // HTTP-01 (RFC 8555 §8.3): answered before any redirect, since the CA asks on port 80.
        if let acmeChallenge, !isUpgrade, path.hasPrefix(ACMEChallenges.httpPathPrefix) {
            if let refusal = onlyGet() { return refusal }
            let token = String(path.dropFirst(ACMEChallenges.httpPathPrefix.count))
            guard let keyAuthorization = acmeChallenge(token) else {
                return answer(.notFound, "no such ACME challenge\n")
            }
            return answer(.ok, keyAuthorization)
        }
        // A plain listener in front of https: everything but health checks moves there (308
        // keeps the method and body), WebSocket upgrades included.
        if let redirect, path != HealthPaths.live, path != HealthPaths.ready {
            switch redirect.outcome(host: request.headers.first(name: "host") ?? "", target: request.uri) {
            case .moved(let location):
                return .respond(
                    Response(
                        status: .permanentRedirect,
                        headers: ["Location": location],
                        body: "moved to \(location)\n",
                        keepAlive: keepAlive && !isUpgrade,
                        headOnly: request.isHead
                    )
                )
            case .misdirected:
                return .respond(
                    Response(
                        status: .misdirectedRequest,
                        headers: [:],
                        body: "this gateway serves no such host\n",
                        keepAlive: false,
                        headOnly: request.isHead
                    )
                )
            case .badTarget:
                return .respond(
                    Response(
                        status: .badRequest,
                        headers: [:],
                        body: "the request target is not a path\n",
                        keepAlive: false,
                        headOnly: request.isHead
                    )
                )
            }
        }
        if isUpgrade {
            let refusal: UpgradeNegotiator.Refusal
            switch UpgradeNegotiator.negotiate(request, routes: routes) {
            case .success(let acceptance):
                guard !request.hasBody else {
                    refusal = .init(status: .badRequest, headers: [:], message: "an upgrade request has no body")
                    break
                }
                return .upgrade(acceptance)
            case .failure(let failure):
                refusal = failure
            }
            // The client wanted this connection to become a WebSocket; refused, it is done.
            return .respond(
                Response(
                    status: refusal.status,
                    headers: refusal.headers,
                    body: refusal.message + "\n",
                    keepAlive: false,
                    headOnly: false
                )
            )
        }
        switch path {
        case HealthPaths.live:
            return onlyGet() ?? answer(.ok, "ok\n")
        case HealthPaths.ready:
            if let refusal = onlyGet() { return refusal }
            let health = health()
            guard health.phase == .ready else {
                return answer(.serviceUnavailable, "\(health.phase.rawValue)\n", headers: ["Retry-After": "1"])
            }
            // Public listeners say only what state the gateway is in; what is missing (a Redis
            // address, an ACME error) is for the log and the admin API's /v1/status.
            if let degradation = health.degradation {
                return degradation.blocksReadiness
                    ? answer(.serviceUnavailable, "degraded\n", headers: ["Retry-After": "1"])
                    : answer(.ok, "degraded\n")
            }
            return answer(.ok, "ready\n")
        default:
            if routes.route(forTarget: request.uri) != nil {
                if let refusal = onlyGet(allow: "GET", "this path serves WebSocket connections\n") { return refusal }
                return answer(
                    .upgradeRequired,
                    "this path serves WebSocket connections: connect with a WebSocket client\n",
                    headers: ["Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13"]
                )
            }
            if path == RouteTable.clientScriptPath, routes.servesClientScript {
                if let refusal = onlyGet() { return refusal }
                return .file(
                    StaticSettings(root: StaticSettings.builtinDemo),
                    relative: path,
                    ifNoneMatch: request.headers.first(name: "if-none-match"),
                    keepAlive: keepAlive,
                    headOnly: request.isHead
                )
            }
            if let (route, relative) = routes.folder(forPath: path), case .static(let settings) = route.backend {
                if let refusal = onlyGet() { return refusal }
                return .file(
                    settings,
                    relative: relative,
                    ifNoneMatch: request.headers.first(name: "if-none-match"),
                    keepAlive: keepAlive,
                    headOnly: request.isHead
                )
            }
            return answer(.notFound, "not found\n")
        }
    }

    /// `example.com:8080` → `example.com`; `[::1]:80` → `[::1]`.
    static func hostWithoutPort(_ host: String) -> String {
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") { return String(host[...close]) }
        if let colon = host.lastIndex(of: ":"), !host[..<colon].contains(":") { return String(host[..<colon]) }
        return host
    }
}

extension HTTPRequestHead {
    /// A body arrives (to be read and dropped: nothing here takes one).
    var hasBody: Bool {
        if headers.contains(name: "transfer-encoding") { return true }
        if let length = headers.first(name: "content-length"), let value = Int(length), value > 0 { return true }
        return false
    }

    var isHead: Bool { method == .HEAD }
}

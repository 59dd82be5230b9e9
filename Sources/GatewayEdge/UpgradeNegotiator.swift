import GatewayCore
import GatewayWebSocket
import NIOHTTP1

/// Decides a WebSocket upgrade request (RFC 6455 §4.2): which route, which subprotocol, which
/// extensions — or which HTTP status refuses it. Pure: no channel, no I/O.
enum UpgradeNegotiator {
    struct Acceptance {
        var route: RouteConfiguration
        var subprotocol: String?
        var deflate: PerMessageDeflateParameters?
        var responseHeaders: HTTPHeaders
        /// The marker a token-carrying client offered beside its token, answered when no
        /// subprotocol is selected (browsers fail a handshake that offered some and got none).
        var tokenMarker: String?
        /// Asked as an extended CONNECT on an HTTP/2 stream (RFC 8441): answered with 200, the
        /// stream then carries the WebSocket.
        var overHTTP2 = false

        /// The same acceptance answering `subprotocol` (an upstream's choice in a `frames`
        /// proxy) instead of the one negotiated from the route's list.
        func answering(subprotocol: String?) -> Acceptance {
            var changed = self
            changed.subprotocol = subprotocol
            changed.responseHeaders.remove(name: "Sec-WebSocket-Protocol")
            if let answered = subprotocol ?? tokenMarker {
                changed.responseHeaders.add(name: "Sec-WebSocket-Protocol", value: answered)
            }
            return changed
        }
    }

    struct Refusal: Error {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        var message: String
    }

    /// Whether a request asks for the WebSocket protocol at all: an HTTP/1.1 Upgrade, or an
    /// HTTP/2 extended CONNECT whose `:protocol` is `websocket` (RFC 8441 §4).
    static func isUpgradeRequest(_ head: HTTPRequestHead) -> Bool {
        if isExtendedConnect(head) { return true }
        let upgrade = WebSocketHandshake.listItems(head.headers["upgrade"])
        let connection = WebSocketHandshake.listItems(head.headers["connection"])
        return upgrade.contains { $0.lowercased() == "websocket" }
            && connection.contains { $0.lowercased() == "upgrade" }
    }

    /// An extended CONNECT for a WebSocket, as `HTTP2StreamCodec` passes it on.
    static func isExtendedConnect(_ head: HTTPRequestHead) -> Bool {
        head.version.major == 2 && head.method == .CONNECT
            && head.headers[HTTP2StreamCodec.protocolField].first?.lowercased() == "websocket"
    }

    static func negotiate(_ head: HTTPRequestHead, routes: RouteTable) -> Result<Acceptance, Refusal> {
        func refuse(
            _ status: HTTPResponseStatus,
            _ message: String,
            _ headers: HTTPHeaders = [:]
        ) -> Result<Acceptance, Refusal> {
            .failure(Refusal(status: status, headers: headers, message: message))
        }
        guard let route = routes.route(forTarget: head.uri) else {
            return refuse(.notFound, "no WebSocket route at this path")
        }
        let overHTTP2 = isExtendedConnect(head)
        if !overHTTP2 {
            guard head.method == .GET else {
                return refuse(.methodNotAllowed, "a WebSocket upgrade is a GET request", ["Allow": "GET"])
            }
            guard head.version.major == 1, head.version.minor >= 1 else {
                return refuse(.badRequest, "a WebSocket upgrade needs HTTP/1.1")
            }
        }
        guard head.headers["host"].count == 1 else {
            return refuse(.badRequest, "exactly one Host header is required")
        }
        let origins = head.headers["origin"]
        guard origins.count <= 1, route.origins.allows(origin: origins.first, host: head.headers.first(name: "host"))
        else {
            return refuse(.forbidden, "this page's origin may not connect here")
        }
        let versions = WebSocketHandshake.listItems(head.headers["sec-websocket-version"])
        guard versions == ["13"] else {
            return refuse(.upgradeRequired, "only WebSocket version 13 is supported", ["Sec-WebSocket-Version": "13"])
        }
        // HTTP/2 has no key and no accept value: the stream itself is the proof (RFC 8441 §5).
        let keys = head.headers["sec-websocket-key"]
        var key: String?
        if !overHTTP2 {
            guard keys.count == 1, let only = keys.first, WebSocketHandshake.isValidKey(only) else {
                return refuse(.badRequest, "Sec-WebSocket-Key must be one base64-encoded 16-byte value")
            }
            key = only
        }
        var offered = Set(WebSocketHandshake.listItems(head.headers["sec-websocket-protocol"]).map(String.init))
        // A token sent as a subprotocol entry is never chosen (nor echoed): the answer is the
        // route's own subprotocol, or else the marker the client offered beside the token,
        // because browsers fail a handshake that offered protocols and got none back.
        var tokenMarker: String?
        if let auth = route.auth, auth.sources.contains(.protocol) {
            let carriedToken = offered.contains {
                $0.hasPrefix(auth.protocolPrefix) && $0.count > auth.protocolPrefix.count
            }
            offered = offered.filter { !$0.hasPrefix(auth.protocolPrefix) }
            if carriedToken, offered.contains(auth.protocolMarker) { tokenMarker = auth.protocolMarker }
        }
        let subprotocol = route.subprotocols.first { offered.contains($0) }
        if subprotocol == nil && route.requireSubprotocol {
            return refuse(
                .badRequest,
                "this route requires one of the subprotocols: \(route.subprotocols.joined(separator: ", "))"
            )
        }
        let deflate = PerMessageDeflateNegotiation.negotiate(
            headerValues: head.headers["sec-websocket-extensions"],
            settings: route.compression
        )
        var headers: HTTPHeaders = [:]
        if let key {
            headers = [
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Accept": WebSocketHandshake.acceptValue(forKey: key),
            ]
        }
        if let answered = subprotocol ?? tokenMarker { headers.add(name: "Sec-WebSocket-Protocol", value: answered) }
        if let deflate { headers.add(name: "Sec-WebSocket-Extensions", value: deflate.responseHeader) }
        return .success(
            Acceptance(
                route: route,
                subprotocol: subprotocol,
                deflate: deflate,
                responseHeaders: headers,
                tokenMarker: tokenMarker,
                overHTTP2: overHTTP2
            )
        )
    }
}

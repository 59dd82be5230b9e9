import GatewayCore
import GatewayWebSocket
import WorkerProtocol

/// The fields of a connection's `open` frame (docs/worker-protocol.md, `OpenField`).
enum OpenFields {
    static func make(
        for request: UpgradeRequest,
        route: String,
        forwardHeaders: [String]
    ) -> [(String, String)] {
        var fields: [(String, String)] = [(OpenField.route, route)]
        fields.append((OpenField.path, RouteTable.path(of: request.target)))
        if let question = request.target.firstIndex(of: "?") {
            fields.append((OpenField.query, String(request.target[request.target.index(after: question)...])))
        }
        fields.append((OpenField.peer, request.peer))
        if let subprotocol = request.subprotocol { fields.append((OpenField.subprotocol, subprotocol)) }
        if let tls = request.tlsVersion { fields.append((OpenField.tls, tls)) }
        if let claims = request.claims { fields.append((OpenField.claims, claims)) }
        if let subject = request.subject { fields.append((OpenField.subject, subject)) }
        if let clientSubject = request.clientSubject { fields.append((OpenField.clientSubject, clientSubject)) }
        for (name, value) in request.headers where forwardHeaders.contains(name) {
            fields.append((name, value))
        }
        return fields
    }
}

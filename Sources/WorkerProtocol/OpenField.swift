/// The names of the fields of an `open` frame that describe the connection (they start with
/// `:`; the other fields are request headers). The gateway sends them, the Swift worker library
/// reads them, and docs/worker-protocol.md lists them: a test holds the document's table to
/// `all`.
public enum OpenField {
    public static let route = ":route"
    public static let path = ":path"
    public static let query = ":query"
    public static let peer = ":peer"
    public static let subprotocol = ":subprotocol"
    public static let tls = ":tls"
    public static let claims = ":claims"
    public static let subject = ":sub"
    public static let clientSubject = ":client_subject"

    /// Every field the gateway may send, in the order it sends them, with when and what.
    public static let all: [(name: String, meaning: String)] = [
        (route, "always: the route's name"),
        (path, "always: the request path, without the query"),
        (query, "when the request had one: the query string, without `?`"),
        (
            peer,
            "always: the client's address, `1.2.3.4:5678` or `[::1]:5678`; behind a trusted proxy, the address it names"
        ),
        (subprotocol, "when one was selected: the subprotocol"),
        (tls, "when the listener has TLS: the version, for example `tlsv13`"),
        (claims, "on routes with `auth`: the verified token's payload, the JSON exactly as the token carried it"),
        (subject, "on routes with `auth`, when the token has one: its subject (`sub`)"),
        (clientSubject, "when the client presented a certificate (mutual TLS): its subject, as `CN=…,O=…`"),
    ]
}

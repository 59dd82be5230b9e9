/// An admin API request another node asked this one to answer (it was already authorized
/// there).
public struct ForwardedRequest: Sendable {
    public var method: String
    public var uri: String
    public var body: [UInt8]
    public init(method: String, uri: String, body: [UInt8]) {
        self.method = method
        self.uri = uri
        self.body = body
    }
}

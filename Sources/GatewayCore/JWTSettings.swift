import NIOCore

/// A route's authentication on upgrade: a JWT the client must present, checked before the
/// route's service hears of the connection. Key material is held as text (read from files by
/// the configuration loader); `GatewayAuth` parses it at start.
public struct JWTSettings: Sendable, Equatable {
    public enum Source: String, Sendable, CaseIterable {
        /// `Authorization: Bearer <token>`.
        case header
        /// A `Sec-WebSocket-Protocol` entry `<protocol_prefix><token>`: what browsers can send.
        case `protocol`
        /// A cookie named `cookie`.
        case cookie
        /// A query parameter named `query_parameter`.
        case query
    }

    public enum Algorithm: String, Sendable, CaseIterable {
        case hs256 = "HS256"
        case rs256 = "RS256"
        case es256 = "ES256"
    }

    /// HS256 shared secrets.
    public var secrets: [String]
    /// The file the secret was read from (`hs256_secret_file`), printed by check-config
    /// instead of the secret.
    public var secretFile: String?
    /// PEM public keys: RSA (2048 bits or more) for RS256, P-256 for ES256. Paired with the
    /// configuration key they came from, for error messages.
    public var publicKeys: [(path: String, pem: String)]
    /// A JWKS document (`{"keys": [...]}`), with its path.
    public var jwks: (path: String, json: String)?
    /// Algorithms accepted in a token's header; others (`none` always) are refused.
    public var algorithms: [Algorithm]
    public var issuer: String?
    /// Accepted audiences; the token's `aud` must name one of them (when any are set).
    public var audiences: [String]
    /// Clock skew allowed on `exp` and `nbf`.
    public var leeway: TimeAmount
    /// Where to look for the token, in order.
    public var sources: [Source]
    public var cookieName: String
    public var queryParameter: String
    public var protocolPrefix: String

    public init(
        secrets: [String] = [],
        publicKeys: [(path: String, pem: String)] = [],
        jwks: (path: String, json: String)? = nil,
        algorithms: [Algorithm] = Algorithm.allCases,
        issuer: String? = nil,
        audiences: [String] = [],
        leeway: TimeAmount = .seconds(30),
        sources: [Source] = Source.allCases,
        cookieName: String = "access_token",
        queryParameter: String = "access_token",
        protocolPrefix: String = "bearer."
    ) {
        self.secrets = secrets
        self.secretFile = nil
        self.publicKeys = publicKeys
        self.jwks = jwks
        self.algorithms = algorithms
        self.issuer = issuer
        self.audiences = audiences
        self.leeway = leeway
        self.sources = sources
        self.cookieName = cookieName
        self.queryParameter = queryParameter
        self.protocolPrefix = protocolPrefix
    }

    /// The subprotocol a browser offers next to its token entry, for the gateway to answer
    /// with when the route chooses no subprotocol of its own (`bearer` for `bearer.`):
    /// browsers fail a handshake that offered protocols and got none back.
    public var protocolMarker: String {
        protocolPrefix.hasSuffix(".") ? String(protocolPrefix.dropLast()) : protocolPrefix
    }

    public static func == (lhs: JWTSettings, rhs: JWTSettings) -> Bool {
        lhs.secrets == rhs.secrets && lhs.secretFile == rhs.secretFile
            && lhs.publicKeys.map(\.pem) == rhs.publicKeys.map(\.pem)
            && lhs.publicKeys.map(\.path) == rhs.publicKeys.map(\.path)
            && lhs.jwks?.json == rhs.jwks?.json && lhs.algorithms == rhs.algorithms && lhs.issuer == rhs.issuer
            && lhs.audiences == rhs.audiences && lhs.leeway == rhs.leeway && lhs.sources == rhs.sources
            && lhs.cookieName == rhs.cookieName && lhs.queryParameter == rhs.queryParameter
            && lhs.protocolPrefix == rhs.protocolPrefix
    }
}

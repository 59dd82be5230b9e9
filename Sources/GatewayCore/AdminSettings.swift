/// The admin API's own listener (docs/admin-api.yaml).
///
/// By default a Unix socket, which the file system guards (mode 0660: the gateway's user and
/// group). On TCP anyone who can connect could publish and close connections, so a bearer token
/// is then required.
public struct AdminSettings: Sendable, Equatable {
    public static let defaultAddress = ListenAddress.unix(path: "/run/wssgate/admin.sock")
    /// Shortest token accepted: a token is a password that scripts send on every request.
    public static let minimumTokenLength = 16

    /// nil: no admin API (`address: off`).
    public var address: ListenAddress?
    /// Required in `Authorization: Bearer …` when set (always set on TCP).
    public var token: String?
    /// The file the token was read from (`token_file`), printed by check-config instead of it.
    public var tokenFile: String?
    /// Whether the operator chose `address`. A default socket that cannot be made (no
    /// /run/wssgate when run by hand) is a warning; an address asked for is an error.
    public var isExplicit: Bool

    public init(address: ListenAddress? = AdminSettings.defaultAddress, token: String? = nil, isExplicit: Bool = false)
    {
        self.address = address
        self.token = token
        self.isExplicit = isExplicit
    }
}

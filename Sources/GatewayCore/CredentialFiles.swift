/// Where the gateway reads the secret files its configuration names (certificates, keys, token
/// files), when a privileged step has copied them for it.
///
/// certbot leaves `privkey.pem` readable by root alone, and a systemd unit with `DynamicUser=`
/// runs the gateway as a user that cannot read it. The shipped unit therefore runs
/// `wssgate copy-credentials` as root first (`ExecStartPre=+`, and again on every reload),
/// which copies each such file to `<directory>/<its path>`, readable (not writable) by the gateway,
/// and points the gateway at the copies with `WSSGATE_CREDENTIALS_DIRECTORY`. The configuration
/// keeps naming certbot's own paths; a file that has no copy is read where it is.
public struct CredentialFiles: Sendable, Equatable {
    /// The environment variable naming the folder of copies.
    public static let environmentVariable = "WSSGATE_CREDENTIALS_DIRECTORY"

    /// The folder of copies; nil: every file is read where the configuration says.
    public var directory: String?

    public init(directory: String?) {
        self.directory = directory.flatMap { $0.isEmpty ? nil : $0 }
    }

    public init(environment: [String: String]) {
        self.init(directory: environment[Self.environmentVariable])
    }

    /// The copy's path for a configured path: the configured path below the folder.
    public static func copyPath(for path: String, in directory: String) -> String {
        let relative = path.drop { $0 == "/" }
        return directory.hasSuffix("/") ? directory + relative : directory + "/" + relative
    }

    /// The file to read for a configured path: its copy when there is one.
    public func path(for configured: String, exists: (String) -> Bool) -> String {
        guard let directory else { return configured }
        let copy = Self.copyPath(for: configured, in: directory)
        return exists(copy) ? copy : configured
    }

    /// Whether a configuration key names a secret file: TLS certificates, keys and client CAs
    /// (SNI certificates included), the admin token file, and a route's token keys.
    public static func namesFile(_ path: [String]) -> Bool {
        guard let last = path.last else { return false }
        switch path.first {
        case "listeners":
            return path.count >= 4 && path[2] == "tls" && ["certificate", "key", "client_ca"].contains(last)
        case "admin":
            return path == ["admin", "token_file"]
        case "routes":
            return path.count == 4 && path[2] == "auth"
                && ["hs256_secret_file", "public_keys", "jwks_file"].contains(last)
        default:
            return false
        }
    }
}

import NIOCore

/// `tls.acme` of a listener: the gateway obtains and renews its certificate itself (RFC 8555),
/// as certbot would, and keeps it under `storage` (docs/certificates.md).
public struct ACMESettings: Sendable, Equatable {
    /// How the ACME server checks that we control a name.
    public enum Challenge: String, Sendable, Equatable, CaseIterable {
        /// RFC 8737: answered on the TLS listener itself (ALPN `acme-tls/1`, port 443).
        case tlsALPN01 = "tls-alpn-01"
        /// RFC 8555 §8.3: answered on a plain listener (`/.well-known/acme-challenge/`, port 80).
        case http01 = "http-01"
    }

    /// Let's Encrypt's production directory: `directory: letsencrypt`.
    public static let letsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"
    /// Let's Encrypt's staging directory (untrusted certificates, generous limits):
    /// `directory: letsencrypt-staging`.
    public static let letsEncryptStaging = "https://acme-staging-v02.api.letsencrypt.org/directory"
    /// Named directories a configuration may use instead of a URL.
    public static let presets: [String: String] = [
        "letsencrypt": letsEncrypt,
        "letsencrypt-staging": letsEncryptStaging,
    ]
    public static let defaultStorage = "/var/lib/wssgate/acme"

    /// The ACME directory URL (https).
    public var directory: String
    /// Contact for the account (expiry warnings from the CA); optional.
    public var email: String?
    /// The names the certificate is for; the first is its subject and its folder's name.
    public var domains: [String]
    /// Where the account key, the certificate and its key are kept (created with mode 0700).
    public var storage: String
    /// PEM bundle of the CAs trusted for the ACME server's own HTTPS (Pebble, a private CA);
    /// nil: the system's trust store.
    public var caBundle: String?
    /// Challenge types the gateway offers to answer, in order of preference.
    public var challenges: [Challenge]
    /// External account binding (some CAs require one): key id and base64url HMAC key.
    public var externalAccountKeyID: String?
    public var externalAccountHMACKey: String?
    /// First wait after a failed order; doubled on each failure up to `retryMax`, with jitter.
    public var retryInitial: TimeAmount
    public var retryMax: TimeAmount

    public init(
        directory: String,
        email: String? = nil,
        domains: [String],
        storage: String = Self.defaultStorage,
        caBundle: String? = nil,
        challenges: [Challenge] = [.tlsALPN01, .http01],
        externalAccountKeyID: String? = nil,
        externalAccountHMACKey: String? = nil,
        retryInitial: TimeAmount = .seconds(60),
        retryMax: TimeAmount = .hours(24)
    ) {
        self.directory = directory
        self.email = email
        self.domains = domains
        self.storage = storage
        self.caBundle = caBundle
        self.challenges = challenges
        self.externalAccountKeyID = externalAccountKeyID
        self.externalAccountHMACKey = externalAccountHMACKey
        self.retryInitial = retryInitial
        self.retryMax = retryMax
    }

    /// The folder of this certificate: `<storage>/certificates/<first domain>`.
    public var certificateFolder: String { "\(storage)/certificates/\(domains.first ?? "default")" }
    /// `fullchain.pem` as certbot names it: the leaf, then the intermediates.
    public var certificatePath: String { "\(certificateFolder)/fullchain.pem" }
    /// `privkey.pem`: the certificate's key (mode 0600).
    public var keyPath: String { "\(certificateFolder)/privkey.pem" }
}

extension ACMESettings {
    /// A name a CA validates by HTTP-01 or TLS-ALPN-01: lower-case LDH labels of 1–63
    /// characters, no wildcard (a wildcard needs DNS-01, which the gateway does not answer).
    public static func isDomainName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 253, !name.hasSuffix(".") else { return false }
        for label in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard (1...63).contains(label.utf8.count), label.first != "-", label.last != "-" else { return false }
            guard label.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D })
            else { return false }
        }
        return true
    }
}

import Crypto
import NIOConcurrencyHelpers
import NIOSSL
import SwiftASN1
import X509

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The ACME challenges being answered right now, shared by the certificate manager (which adds
/// and removes them) and the listeners (which answer them): HTTP-01 tokens on plain listeners,
/// TLS-ALPN-01 certificates on TLS listeners.
public final class ACMEChallenges: Sendable {
    /// ALPN protocol of TLS-ALPN-01 (RFC 8737 §6.2).
    public static let alpnProtocol = "acme-tls/1"
    /// id-pe-acmeIdentifier (RFC 8737 §6.1): the critical extension holding SHA-256 of the key
    /// authorization.
    public static let acmeIdentifierOID: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 1, 31]
    /// Where HTTP-01 asks (RFC 8555 §8.3).
    public static let httpPathPrefix = "/.well-known/acme-challenge/"

    private struct Pending {
        var tokens: [String: String] = [:]
        var alpn: [String: NIOSSLContext] = [:]
    }
    private let pending = NIOLockedValueBox(Pending())

    public init() {}

    // MARK: HTTP-01

    public func addHTTP01(token: String, keyAuthorization: String) {
        pending.withLockedValue { $0.tokens[token] = keyAuthorization }
    }

    public func removeHTTP01(token: String) {
        pending.withLockedValue { $0.tokens[token] = nil }
    }

    /// The body for `GET /.well-known/acme-challenge/<token>`, while that token is pending.
    public func keyAuthorization(forToken token: String) -> String? {
        pending.withLockedValue { $0.tokens[token] }
    }

    // MARK: TLS-ALPN-01

    /// Prepares the certificate the CA's validation handshake for `domain` is shown.
    public func addTLSALPN01(domain: String, keyAuthorization: String) throws {
        let context = try Self.challengeContext(domain: domain, keyAuthorization: keyAuthorization)
        pending.withLockedValue { $0.alpn[domain.lowercased()] = context }
    }

    public func removeTLSALPN01(domain: String) {
        pending.withLockedValue { $0.alpn[domain.lowercased()] = nil }
    }

    /// The TLS context for a handshake that offers `acme-tls/1` for `serverName`, if one is
    /// pending.
    public func tlsALPNContext(serverName: String) -> NIOSSLContext? {
        pending.withLockedValue { $0.alpn[serverName.lowercased()] }
    }

    /// The TLS context of a TLS-ALPN-01 answer: the challenge certificate, ALPN `acme-tls/1` only.
    static func challengeContext(domain: String, keyAuthorization: String) throws -> NIOSSLContext {
        let (certificate, key) = try challengeCertificate(domain: domain, keyAuthorization: keyAuthorization)
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: serializer.serializedBytes, format: .der))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem))
        )
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = [alpnProtocol]
        return try NIOSSLContext(configuration: configuration)
    }

    /// A self-signed certificate for `domain` with the critical acmeIdentifier extension holding
    /// SHA-256 of the key authorization (RFC 8737 §3), and its key.
    static func challengeCertificate(
        domain: String,
        keyAuthorization: String
    ) throws -> (Certificate, P256.Signing.PrivateKey) {
        let key = P256.Signing.PrivateKey()
        let certificateKey = Certificate.PrivateKey(key)
        let subject = try DistinguishedName { CommonName(domain) }
        var digest = DER.Serializer()
        try digest.serialize(ASN1OctetString(contentBytes: Array(SHA256.hash(data: Array(keyAuthorization.utf8)))[...]))
        let extensions = try Certificate.Extensions {
            SubjectAlternativeNames([.dnsName(domain)])
            Certificate.Extension(oid: acmeIdentifierOID, critical: true, value: digest.serializedBytes[...])
        }
        let certificate = try CertificateMaterial.signedBySelf(
            key: certificateKey,
            subject: subject,
            extensions: extensions,
            from: Date().addingTimeInterval(-3600),
            days: 7
        )
        return (certificate, key)
    }
}

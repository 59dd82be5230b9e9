import GatewayCore
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL

/// The TLS side of one listener: the current `NIOSSLContext`, swappable at run time so a reload
/// changes the certificate for new handshakes while established connections keep theirs.
public final class ServerTLS: Sendable {
    /// Mozilla's "intermediate" TLS 1.2 suites (ECDHE with AEAD only). BoringSSL's TLS 1.3 suites
    /// are all AEAD and are always on.
    public static let intermediateCipherSuites = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    private let state:
        NIOLockedValueBox<(context: NIOSSLContext, material: CertificateMaterial, hosts: CertificateHosts)>

    public init(material: CertificateMaterial, settings: TLSSettings) throws {
        state = NIOLockedValueBox(
            (
                try Self.makeContext(material: material, settings: settings), material,
                try Self.hosts(material: material, settings: settings)
            )
        )
        answersTLSALPN01 = settings.acme?.challenges.contains(.tlsALPN01) ?? false
    }

    /// Loads (or generates) the material a listener's settings ask for.
    public static func material(for settings: TLSSettings) throws(TLSMaterialError) -> CertificateMaterial {
        switch settings.source {
        case .files(let certificate, let key):
            return try CertificateMaterial.load(certificatePath: certificate, keyPath: key)
        case .selfSigned(let names):
            return try CertificateMaterial.selfSigned(names: names)
        case .acme(let acme):
            // The stored certificate when there is one that covers every domain; until the first
            // order completes, a self-signed one for the domains (and `/readyz` says so).
            if let stored = storedACMEMaterial(acme) { return stored }
            return try CertificateMaterial.selfSigned(names: acme.domains)
        }
    }

    /// The certificate an ACME order stored for these settings, if it is readable and covers
    /// every domain (a changed `domains` list needs a new order).
    public static func storedACMEMaterial(_ acme: ACMESettings) -> CertificateMaterial? {
        guard let material = try? CertificateMaterial.load(certificatePath: acme.certificatePath, keyPath: acme.keyPath)
        else { return nil }
        guard acme.domains.allSatisfy({ covers(material.dnsNames, $0) }) else { return nil }
        return material
    }

    /// The listener's context: its certificate, the SNI certificates (read from their files
    /// now), client-certificate checks, and the Mozilla "intermediate" protocol settings.
    public static func makeContext(material: CertificateMaterial, settings: TLSSettings) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: material.chain.map { .certificate($0) },
            privateKey: .privateKey(material.privateKey)
        )
        // The server factory's default minimum is TLS 1.0.
        configuration.minimumTLSVersion = settings.minimumVersion == .tls13 ? .tlsv13 : .tlsv12
        configuration.cipherSuites = intermediateCipherSuites
        // `curves` stays nil: swift-nio-ssl's default groups put the post-quantum hybrid
        // X25519MLKEM768 first (then X25519, P-256, P-384), so a client that offers it (Chrome,
        // Firefox, Safari by default) gets it, and one that does not gets a classic group
        // (TLSKeyExchangeTests check both on the wire).
        // `h2` only where the listener enables HTTP/2: a listener without it never advertises it.
        configuration.applicationProtocols = settings.http2 ? ["h2", "http/1.1"] : ["http/1.1"]
        let extras = try additionalMaterial(for: settings)
        if !extras.isEmpty {
            configuration.sslContextCallback = { values, promise in
                guard let name = values.serverHostname?.lowercased(),
                    let chosen = extras.first(where: { covers($0.dnsNames, name) })
                else {
                    return promise.succeed(.noChanges)
                }
                var override = NIOSSLContextConfigurationOverride()
                override.certificateChain = chosen.chain.map { .certificate($0) }
                override.privateKey = .privateKey(chosen.privateKey)
                promise.succeed(override)
            }
        }
        if settings.clientCertificates != .off, let path = settings.clientCA {
            let authorities: [NIOSSLCertificate]
            do {
                authorities = try NIOSSLCertificate.fromPEMFile(path)
            } catch {
                throw TLSMaterialError(
                    .invalidPEM,
                    field: TLSMaterialError.Field("client_ca"),
                    "\(path) holds no readable PEM certificate"
                )
            }
            guard !authorities.isEmpty else {
                throw TLSMaterialError(
                    .invalidPEM,
                    field: TLSMaterialError.Field("client_ca"),
                    "\(path) holds no PEM certificate"
                )
            }
            configuration.trustRoots = .certificates(authorities)
            configuration.certificateVerification =
                settings.clientCertificates == .required ? .noHostnameVerification : .optionalVerification
        }
        return try NIOSSLContext(configuration: configuration)
    }

    /// The SNI certificates of a listener, each checked like the main one.
    public static func additionalMaterial(for settings: TLSSettings) throws(TLSMaterialError) -> [CertificateMaterial] {
        var result: [CertificateMaterial] = []
        for entry in settings.additional {
            let certificateField = TLSMaterialError.Field("certificates.\(entry.name).certificate")
            let keyField = TLSMaterialError.Field("certificates.\(entry.name).key")
            let material: CertificateMaterial
            do {
                material = try CertificateMaterial.load(
                    certificatePath: entry.certificate,
                    keyPath: entry.key,
                    certificateField: certificateField,
                    keyField: keyField
                )
            } catch {
                throw relabel(error, certificate: certificateField, key: keyField)
            }
            guard !material.dnsNames.isEmpty else {
                throw TLSMaterialError(
                    .invalidPEM,
                    field: certificateField,
                    "\(entry.certificate) names no DNS name (subjectAltName) for SNI to choose it by"
                )
            }
            result.append(material)
        }
        return result
    }

    /// Parsing errors name `certificate` or `key`; an SNI entry's name its own keys.
    private static func relabel(
        _ error: TLSMaterialError,
        certificate: TLSMaterialError.Field,
        key: TLSMaterialError.Field
    ) -> TLSMaterialError {
        var relabelled = error
        if error.field == .certificate { relabelled.field = certificate }
        if error.field == .key { relabelled.field = key }
        return relabelled
    }

    /// The hosts of a listener's certificates: its own and the SNI ones.
    static func hosts(material: CertificateMaterial, settings: TLSSettings) throws -> CertificateHosts {
        var hosts = material.hosts
        for extra in try additionalMaterial(for: settings) { hosts.formUnion(extra.hosts) }
        return hosts
    }

    /// Whether a certificate's names cover `host`: exactly, or by a `*.` wildcard for one label.
    public static func covers(_ names: [String], _ host: String) -> Bool {
        names.contains { name in
            if name == host { return true }
            guard name.hasPrefix("*.") else { return false }
            let suffix = name.dropFirst(1)
            guard host.hasSuffix(suffix) else { return false }
            return !host.dropLast(suffix.count).contains(".") && host.count > suffix.count
        }
    }

    /// Whether this listener answers TLS-ALPN-01 (its certificate comes from ACME with that
    /// challenge): fixed for the listener's life, as reloads keep TLS on or off.
    public let answersTLSALPN01: Bool

    public var context: NIOSSLContext { state.withLockedValue { $0.context } }
    public var material: CertificateMaterial { state.withLockedValue { $0.material } }
    /// The hosts the listener's certificates are for, as they are now.
    public var hosts: CertificateHosts { state.withLockedValue { $0.hosts } }

    /// Swaps in new material; handshakes from now on present it.
    public func replace(material: CertificateMaterial, settings: TLSSettings) throws {
        let context = try Self.makeContext(material: material, settings: settings)
        let hosts = try Self.hosts(material: material, settings: settings)
        state.withLockedValue { $0 = (context, material, hosts) }
    }
}

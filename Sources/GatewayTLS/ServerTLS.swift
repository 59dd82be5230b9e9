import GatewayCore
import NIOConcurrencyHelpers
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

    private let state: NIOLockedValueBox<(context: NIOSSLContext, material: CertificateMaterial)>

    public init(material: CertificateMaterial, settings: TLSSettings) throws {
        state = NIOLockedValueBox((try Self.makeContext(material: material, settings: settings), material))
    }

    /// Loads (or generates) the material a listener's settings ask for.
    public static func material(for settings: TLSSettings) throws(TLSMaterialError) -> CertificateMaterial {
        switch settings.source {
        case .files(let certificate, let key):
            return try CertificateMaterial.load(certificatePath: certificate, keyPath: key)
        case .selfSigned(let names):
            return try CertificateMaterial.selfSigned(names: names)
        }
    }

    public static func makeContext(material: CertificateMaterial, settings: TLSSettings) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: material.chain.map { .certificate($0) },
            privateKey: .privateKey(material.privateKey)
        )
        // The server factory's default minimum is TLS 1.0.
        configuration.minimumTLSVersion = settings.minimumVersion == .tls13 ? .tlsv13 : .tlsv12
        configuration.cipherSuites = intermediateCipherSuites
        configuration.applicationProtocols = ["http/1.1"]
        return try NIOSSLContext(configuration: configuration)
    }

    public var context: NIOSSLContext { state.withLockedValue { $0.context } }
    public var material: CertificateMaterial { state.withLockedValue { $0.material } }

    /// Swaps in new material; handshakes from now on present it.
    public func replace(material: CertificateMaterial, settings: TLSSettings) throws {
        let context = try Self.makeContext(material: material, settings: settings)
        state.withLockedValue { $0 = (context, material) }
    }
}

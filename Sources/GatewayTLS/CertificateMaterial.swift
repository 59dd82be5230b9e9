import Crypto
import GatewayCore
import NIOSSL
import SwiftASN1
import X509

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A certificate chain and its private key, loaded and checked, ready for NIOSSL.
public struct CertificateMaterial: Sendable {
    public var chain: [NIOSSLCertificate]
    public var privateKey: NIOSSLPrivateKey
    /// SHA-256 of the leaf certificate's DER, as colon-separated hex (what browsers display).
    public var fingerprint: String
    public var notValidAfter: Date
    public var subject: String
    /// The DNS names the certificate is for (its subjectAltName DNS entries): what SNI picks by.
    public var dnsNames: [String] = []
    /// The IP addresses it is for (subjectAltName IP entries), as 4 or 16 bytes.
    public var ipAddresses: [[UInt8]] = []

    /// Every host the certificate is for.
    public var hosts: CertificateHosts { CertificateHosts(dnsNames: dnsNames, ipAddresses: ipAddresses) }

    /// Loads PEM files as Let's Encrypt writes them: `fullchain.pem` (leaf first) and `privkey.pem`
    /// (PKCS#8, SEC1 or PKCS#1; RSA or ECDSA). The key must belong to the leaf.
    public static func load(
        certificatePath: String,
        keyPath: String,
        certificateField: TLSMaterialError.Field = .certificate,
        keyField: TLSMaterialError.Field = .key
    ) throws(TLSMaterialError) -> CertificateMaterial {
        let certificateBytes = try read(certificatePath, field: certificateField)
        let keyBytes = try read(keyPath, field: keyField)
        return try parse(
            certificatePEM: certificateBytes,
            keyPEM: keyBytes,
            certificateSource: certificatePath,
            keySource: keyPath
        )
    }

    public static func parse(
        certificatePEM: [UInt8],
        keyPEM: [UInt8],
        certificateSource: String = "certificate",
        keySource: String = "key"
    ) throws(TLSMaterialError) -> CertificateMaterial {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(certificatePEM)
        } catch {
            throw TLSMaterialError(
                .invalidPEM,
                field: .certificate,
                "\(certificateSource) holds no readable PEM certificate (\(error))"
            )
        }
        guard let leafNIO = chain.first else {
            throw TLSMaterialError(.invalidPEM, field: .certificate, "\(certificateSource) holds no PEM certificate")
        }
        let leaf: Certificate
        let leafDER: [UInt8]
        do {
            leafDER = try leafNIO.toDERBytes()
            leaf = try Certificate(derEncoded: leafDER)
        } catch {
            throw TLSMaterialError(
                .invalidPEM,
                field: .certificate,
                "\(certificateSource): the first certificate cannot be parsed (\(error))"
            )
        }
        let keyText = String(decoding: keyPEM, as: UTF8.self)
        let key: Certificate.PrivateKey
        let nioKey: NIOSSLPrivateKey
        do {
            key = try Certificate.PrivateKey(pemEncoded: keyText)
            nioKey = try NIOSSLPrivateKey(bytes: keyPEM, format: .pem)
        } catch {
            throw TLSMaterialError(
                .invalidPEM,
                field: .key,
                "\(keySource) holds no readable PEM private key (\(error))"
            )
        }
        guard key.publicKey == leaf.publicKey else {
            throw TLSMaterialError(
                .keyMismatch,
                field: .key,
                "\(keySource) is not the key of the first certificate in \(certificateSource)"
            )
        }
        var dnsNames: [String] = []
        var ipAddresses: [[UInt8]] = []
        if let names = try? leaf.extensions.subjectAlternativeNames {
            for name in names {
                switch name {
                case .dnsName(let dns): dnsNames.append(dns.lowercased())
                case .ipAddress(let address): ipAddresses.append(Array(address.bytes))
                default: break
                }
            }
        }
        return CertificateMaterial(
            chain: chain,
            privateKey: nioKey,
            fingerprint: fingerprint(der: leafDER),
            notValidAfter: leaf.notValidAfter,
            subject: leaf.subject.description,
            dnsNames: dnsNames,
            ipAddresses: ipAddresses
        )
    }

    /// The subject of a client's certificate (mutual TLS), as workers receive it.
    public static func subject(of certificate: NIOSSLCertificate) -> String? {
        guard let der = try? certificate.toDERBytes(), let parsed = try? Certificate(derEncoded: der) else {
            return nil
        }
        return parsed.subject.description
    }

    /// A certificate for `names` (DNS names or IP literals), signed by its own fresh P-256 key and
    /// valid for a year from an hour ago (clock skew). Used when no certificate is configured, so
    /// the first start already speaks TLS.
    public static func selfSigned(names: [String], now: Date = Date()) throws(TLSMaterialError) -> CertificateMaterial {
        do {
            let key = P256.Signing.PrivateKey()
            let certificateKey = Certificate.PrivateKey(key)
            let subject = try DistinguishedName {
                OrganizationName("wssgate")
                CommonName(names.first ?? "localhost")
            }
            var alternativeNames: [GeneralName] = []
            for name in names {
                if let address = IPAddressBytes(name) {
                    alternativeNames.append(.ipAddress(ASN1OctetString(contentBytes: address[...])))
                } else {
                    alternativeNames.append(.dnsName(name))
                }
            }
            let extensions = try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(alternativeNames)
            }
            let certificate = try signedBySelf(
                key: certificateKey,
                subject: subject,
                extensions: extensions,
                from: now.addingTimeInterval(-3600),
                days: 365
            )
            var serializer = DER.Serializer()
            try serializer.serialize(certificate)
            let der = serializer.serializedBytes
            return CertificateMaterial(
                chain: [try NIOSSLCertificate(bytes: der, format: .der)],
                privateKey: try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem),
                fingerprint: fingerprint(der: der),
                notValidAfter: certificate.notValidAfter,
                subject: certificate.subject.description,
                dnsNames: CertificateHosts(names: names).dnsNames,
                ipAddresses: CertificateHosts(names: names).ipAddresses
            )
        } catch let error as TLSMaterialError {
            throw error
        } catch {
            throw TLSMaterialError(.generation, field: .certificate, "cannot make a self-signed certificate: \(error)")
        }
    }

    /// A certificate its own key signs, with a random positive 128-bit serial, valid `days`
    /// from `start` (the generated certificate and TLS-ALPN-01's challenge certificate).
    static func signedBySelf(
        key: Certificate.PrivateKey,
        subject: DistinguishedName,
        extensions: Certificate.Extensions,
        from start: Date,
        days: Double
    ) throws -> Certificate {
        var serial = [UInt8](repeating: 0, count: 16)
        for index in serial.indices { serial[index] = UInt8.random(in: 0...255) }
        serial[0] &= 0x7F
        return try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(bytes: serial[...]),
            publicKey: key.publicKey,
            notValidBefore: start,
            notValidAfter: start.addingTimeInterval(days * 86400),
            issuer: subject,
            subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: key
        )
    }

    static func fingerprint(der: [UInt8]) -> String {
        SHA256.hash(data: der).map { byte in
            let hex = String(byte, radix: 16, uppercase: true)
            return hex.count == 1 ? "0" + hex : hex
        }.joined(separator: ":")
    }

    private static func read(_ path: String, field: TLSMaterialError.Field) throws(TLSMaterialError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TLSMaterialError(.unreadable, field: field, "cannot read \(path)")
        }
        return Array(data)
    }
}

/// The 4 or 16 bytes of an IP literal, or nil for a name.
func IPAddressBytes(_ text: String) -> [UInt8]? {
    var v4 = in_addr()
    if inet_pton(AF_INET, text, &v4) == 1 {
        return withUnsafeBytes(of: &v4) { Array($0) }
    }
    var v6 = in6_addr()
    if inet_pton(AF_INET6, text, &v6) == 1 {
        return withUnsafeBytes(of: &v6) { Array($0) }
    }
    return nil
}

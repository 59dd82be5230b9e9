import Crypto
import GatewayCore
import GatewayTLS
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import ServiceLifecycle
import SwiftASN1
import X509

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One order, from the storage lock to the certificate served (RFC 8555): account, order,
/// authorizations, finalization, download and checks.
extension CertificateManager {
    func obtain(_ index: Int, forced: Bool, replacing previous: CertificateMaterial?) async throws {
        let entry = managed[index]
        let acme = entry.acme
        let storage = ACMEStorage(settings: acme)
        try storage.prepare()
        let lock = try await acquireLock(storage)
        defer { storage.unlock(lock) }
        // Another gateway sharing the storage may have just renewed it.
        if !forced, let stored = ServerTLS.storedACMEMaterial(acme), stored.fingerprint != previous?.fingerprint,
            stored.notValidAfter > Date()
        {
            logger.info(
                "another process stored a new certificate; using it",
                metadata: ["listener": .string(entry.names.joined(separator: ","))]
            )
            serve(stored, index: index)
            return
        }
        let client = try makeClient(acme)
        let logMetadata: Logger.Metadata = [
            "listener": .string(entry.names.joined(separator: ",")),
            "domains": .string(acme.domains.joined(separator: ",")),
        ]
        logger.info("ACME order", metadata: logMetadata.merging(["directory": .string(acme.directory)]) { $1 })
        try await ensureAccount(client, acme: acme, storage: storage)
        // RFC 9773 §5: with ARI, the order names the certificate it replaces.
        let offersARI = (try? await client.directoryResource().renewalInfo) != nil
        let replaces = offersARI ? previous.flatMap(Self.leaf).flatMap(Self.renewalIdentifier) : nil
        if let replaces {
            logger.info("ACME order replaces", metadata: logMetadata.merging(["replaces": .string(replaces)]) { $1 })
        }
        let (orderURL, initialOrder) = try await client.newOrder(domains: acme.domains, replaces: replaces)
        var order = initialOrder
        if order.status == "pending" {
            try await authorize(order, client: client, acme: acme)
            order = try await poll(orderURL, client: client, until: ["ready", "valid"], what: "the order")
        }
        guard order.status == "ready" || order.status == "valid" else {
            throw ACMEError(.refused, "the order is \(order.status)\(order.error.map { ": \($0)" } ?? "")")
        }
        let (material, chain, keyPEM) = try await issue(order, at: orderURL, client: client, acme: acme)
        try storage.saveCertificate(chainPEM: chain, keyPEM: keyPEM)
        let retries = await client.badNonceRetriesDone
        Counter(label: "wssgate_acme_orders_total", dimensions: [("result", "success")]).increment()
        update(index) { status in
            status.issued += 1
            status.failures = 0
            status.lastError = nil
        }
        // In service first: whoever reads the log line finds the certificate served.
        serve(material, index: index)
        logger.info(
            "ACME certificate issued",
            metadata: logMetadata.merging([
                "not_after": .string("\(material.notValidAfter)"), "sha256": .string(material.fingerprint),
                "bad_nonce_retries": .stringConvertible(retries),
            ]) { $1 }
        )
    }

    /// The ACME account (made once, its URL stored), with the CA's external account binding
    /// when the settings give one.
    private func ensureAccount(_ client: ACMEClient, acme: ACMESettings, storage: ACMEStorage) async throws {
        var externalAccount: (keyID: String, hmacKey: [UInt8])?
        if let keyID = acme.externalAccountKeyID, let text = acme.externalAccountHMACKey {
            guard let hmacKey = Base64URL.decode(text), !hmacKey.isEmpty else {
                throw ACMEError(.refused, "tls.acme.eab_hmac_key is not base64url")
            }
            externalAccount = (keyID, hmacKey)
        }
        let hadAccount = await client.accountURL != nil
        let accountURL = try await client.ensureAccount(email: acme.email, externalAccount: externalAccount)
        if !hadAccount { try storage.saveAccountURL(accountURL) }
    }

    /// Finalizes a ready order with a new key's request and downloads the certificate, which
    /// must name every domain asked for.
    private func issue(
        _ order: ACMEResource.Order,
        at orderURL: String,
        client: ACMEClient,
        acme: ACMESettings
    ) async throws -> (CertificateMaterial, [UInt8], [UInt8]) {
        var order = order
        // A new key per certificate; the account key never leaves the storage.
        let key = P256.Signing.PrivateKey()
        if order.status == "ready" {
            order = try await client.finalize(
                order.finalize,
                csr: try Self.signingRequest(domains: acme.domains, key: key)
            )
            if order.status != "valid" {
                order = try await poll(orderURL, client: client, until: ["valid"], what: "the finalized order")
            }
        }
        guard let certificateURL = order.certificate else {
            throw ACMEError(.protocolViolation, "a valid order without a certificate URL")
        }
        let chain = try await client.downloadCertificate(certificateURL)
        let keyPEM = Array(key.pemRepresentation.utf8)
        let material: CertificateMaterial
        do {
            material = try CertificateMaterial.parse(
                certificatePEM: chain,
                keyPEM: keyPEM,
                certificateSource: "the issued certificate",
                keySource: "the new key"
            )
        } catch {
            throw ACMEError(.badCertificate, "\(error)")
        }
        guard acme.domains.allSatisfy({ name in material.dnsNames.contains(name) }) else {
            throw ACMEError(
                .badCertificate,
                "the issued certificate names \(material.dnsNames.joined(separator: ", ")), not \(acme.domains.joined(separator: ", "))"
            )
        }
        return (material, chain, keyPEM)
    }

    /// Waits for the storage lock, polling, so two gateways never order at once.
    func acquireLock(_ storage: ACMEStorage) async throws -> Int32 {
        let deadline = Date().addingTimeInterval(Self.lockWait)
        while true {
            if let descriptor = try storage.tryLock() { return descriptor }
            guard Date() < deadline else {
                throw ACMEError(.locked, "another process has held \(storage.root)/lock for \(Int(Self.lockWait)) s")
            }
            try await Task.sleep(nanoseconds: 500_000_000)
        }
    }

    /// Answers every pending authorization of an order with the first challenge type the
    /// configuration prefers and the CA offers, then waits for each to be valid.
    func authorize(_ order: ACMEResource.Order, client: ACMEClient, acme: ACMESettings) async throws {
        let thumbprint = await client.thumbprint
        var cleanups: [@Sendable () -> Void] = []
        defer { for cleanup in cleanups { cleanup() } }
        var waiting: [(url: String, domain: String, type: String)] = []
        for url in order.authorizations {
            let (authorization, _) = try await client.fetch(ACMEResource.Authorization.self, url)
            let domain = authorization.identifier.value
            if authorization.status == "valid" { continue }
            guard authorization.status == "pending" else {
                throw ACMEError(.challengeFailed, "the authorization for \(domain) is \(authorization.status)")
            }
            let usable = acme.challenges.filter { $0 != .http01 || answersHTTP01 }
            guard
                let (kind, challenge) = usable.lazy.compactMap({ kind in
                    authorization.challenges.first { $0.type == kind.rawValue && $0.token != nil }.map { (kind, $0) }
                }).first, let token = challenge.token
            else {
                let offered = authorization.challenges.map(\.type).joined(separator: ", ")
                throw ACMEError(
                    .noUsableChallenge,
                    "the CA offers \(offered) for \(domain); this gateway answers \(usable.map(\.rawValue).joined(separator: ", "))"
                        + (answersHTTP01 ? "" : " (http-01 needs a plain listener on port 80)")
                )
            }
            let keyAuthorization = "\(token).\(thumbprint)"
            let challenges = self.challenges
            switch kind {
            case .http01:
                challenges.addHTTP01(token: token, keyAuthorization: keyAuthorization)
                cleanups.append { challenges.removeHTTP01(token: token) }
            case .tlsALPN01:
                try challenges.addTLSALPN01(domain: domain, keyAuthorization: keyAuthorization)
                cleanups.append { challenges.removeTLSALPN01(domain: domain) }
            }
            try await client.respond(toChallenge: challenge.url)
            waiting.append((url, domain, kind.rawValue))
        }
        for (url, domain, type) in waiting {
            let started = Date()
            while true {
                let (authorization, retryAfter) = try await client.fetch(ACMEResource.Authorization.self, url)
                switch authorization.status {
                case "valid":
                    logger.info(
                        "ACME challenge passed",
                        metadata: ["domain": .string(domain), "challenge": .string(type)]
                    )
                case "pending", "processing":
                    guard Date().timeIntervalSince(started) < Self.pollLimit else {
                        throw ACMEError(
                            .timedOut,
                            "the CA had not checked the \(type) challenge for \(domain) after \(Int(Self.pollLimit)) s"
                        )
                    }
                    try await Task.sleep(nanoseconds: UInt64(min(max(retryAfter ?? 1, 0.5), 10) * 1e9))
                    continue
                default:
                    let detail = authorization.challenges.first { $0.type == type }?.error?.description ?? "no detail"
                    throw ACMEError(.challengeFailed, "the CA could not validate \(domain) by \(type): \(detail)")
                }
                break
            }
        }
    }

    func poll(
        _ url: String,
        client: ACMEClient,
        until states: Set<String>,
        what: String
    ) async throws -> ACMEResource.Order {
        let started = Date()
        while true {
            let (order, retryAfter) = try await client.fetch(ACMEResource.Order.self, url)
            if states.contains(order.status) { return order }
            if order.status == "invalid" {
                throw ACMEError(.refused, "\(what) became invalid\(order.error.map { ": \($0)" } ?? "")")
            }
            guard Date().timeIntervalSince(started) < Self.pollLimit else {
                throw ACMEError(.timedOut, "\(what) was still \(order.status) after \(Int(Self.pollLimit)) s")
            }
            try await Task.sleep(nanoseconds: UInt64(min(max(retryAfter ?? 1, 0.5), 10) * 1e9))
        }
    }

    /// A PKCS#10 request for the names (subjectAltName; the first also as CN), signed by the
    /// certificate's new key.
    static func signingRequest(domains: [String], key: P256.Signing.PrivateKey) throws -> [UInt8] {
        let subject = try DistinguishedName { CommonName(domains[0]) }
        let extensions = try Certificate.Extensions { SubjectAlternativeNames(domains.map { .dnsName($0) }) }
        let attributes = CertificateSigningRequest.Attributes([try .init(ExtensionRequest(extensions: extensions))])
        let request = try CertificateSigningRequest(
            version: .v1,
            subject: subject,
            privateKey: Certificate.PrivateKey(key),
            attributes: attributes,
            signatureAlgorithm: .ecdsaWithSHA256
        )
        var serializer = DER.Serializer()
        try serializer.serialize(request)
        return serializer.serializedBytes
    }
}

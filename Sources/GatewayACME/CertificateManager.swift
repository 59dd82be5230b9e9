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

/// Obtains and renews the certificates of listeners with `tls.acme` (docs/certificates.md):
/// at start when no valid one is stored, then when a third of the lifetime is left (or in the
/// CA's ARI window); failures back off with jitter and honour `Retry-After`, and the certificate
/// being served stays until a new one is stored. New certificates go to the listeners through
/// `ServerTLS.replace`, the same path as a reload: open connections keep theirs.
public final class CertificateManager: Service, CertificateAdministration, Sendable {
    /// One certificate, and the listeners that serve it (listeners with equal `tls.acme` share).
    struct Managed: Sendable {
        var acme: ACMESettings
        var listeners: [(name: String, tls: ServerTLS, settings: TLSSettings)]
        var wakeup = Wakeup()
        var names: [String] { listeners.map(\.name) }
    }

    /// Polling an authorization or order gives up after this long.
    static let pollLimit: Double = 120
    /// The longest sleep between looks at the stored certificate and the ARI window.
    static let recheckInterval: Double = 6 * 3600
    /// How long to wait for another process's order (the storage lock).
    static let lockWait: Double = 600

    let managed: [Managed]
    let statuses: NIOLockedValueBox<[CertificateStatus]>
    let challenges: ACMEChallenges
    let answersHTTP01: Bool
    let group: any EventLoopGroup
    let logger: Logger
    let userAgent: String
    let listening: @Sendable () async -> Bool

    /// - Parameters:
    ///   - listeners: every listener whose `tls.source` is `.acme`.
    ///   - answersHTTP01: whether a plain listener exists to answer HTTP-01.
    ///   - listening: returns once the listeners accept (false: the wait was cancelled): no
    ///     order starts before, since the CA may check a challenge at once.
    public init(
        listeners: [(name: String, tls: ServerTLS, settings: TLSSettings)],
        challenges: ACMEChallenges,
        answersHTTP01: Bool,
        group: any EventLoopGroup,
        logger: Logger,
        userAgent: String,
        listening: @escaping @Sendable () async -> Bool = { true }
    ) {
        self.listening = listening
        var managed: [Managed] = []
        for listener in listeners {
            guard let acme = listener.settings.acme else { continue }
            if let index = managed.firstIndex(where: { $0.acme == acme }) {
                managed[index].listeners.append(listener)
            } else {
                managed.append(Managed(acme: acme, listeners: [listener]))
            }
        }
        self.managed = managed
        self.statuses = NIOLockedValueBox(
            managed.map { entry in
                let serving = ServerTLS.storedACMEMaterial(entry.acme)
                return CertificateStatus(
                    listeners: entry.names,
                    domains: entry.acme.domains,
                    directory: entry.acme.directory,
                    state: serving.map { $0.notValidAfter > Date() } == true ? .valid : .pending,
                    notAfter: serving?.notValidAfter
                )
            }
        )
        self.challenges = challenges
        self.answersHTTP01 = answersHTTP01
        self.group = group
        self.logger = logger
        self.userAgent = userAgent
    }

    public func run() async throws {
        // A graceful stop cancels the loops (an order in flight is abandoned; the CA keeps it).
        await cancelWhenGracefulShutdown {
            guard await self.listening() else { return }
            await withTaskGroup(of: Void.self) { tasks in
                for index in self.managed.indices {
                    tasks.addTask { await self.maintain(index) }
                }
            }
        }
    }

    // MARK: CertificateAdministration

    public var certificateStatuses: [CertificateStatus] { statuses.withLockedValue { $0 } }

    public func renewNow(listener: String?) -> [String] {
        var renewing: [String] = []
        for entry in managed where listener == nil || entry.names.contains(listener!) {
            renewing += entry.names
            entry.wakeup.signal()
        }
        return renewing
    }

    /// What `/readyz` says while a listener has no certificate from the CA.
    public var degradedReason: String? {
        let waiting = certificateStatuses.filter { $0.state != .valid }
        guard !waiting.isEmpty else { return nil }
        return waiting.map { status in
            var text =
                "listener \(status.listeners.joined(separator: ", ")) serves a self-signed certificate until ACME issues one for \(status.domains.joined(separator: ", "))"
            if let error = status.lastError { text += " (last error: \(error))" }
            return text
        }.joined(separator: "; ")
    }

    // MARK: The loop of one certificate

    func maintain(_ index: Int) async {
        let entry = managed[index]
        let acme = entry.acme
        var backoff = Backoff(initial: acme.retryInitial, maximum: acme.retryMax)
        var retryAt: Date?
        var renewalWindow: (certificate: String, at: Date, checkAfter: Date)?
        // A renewal asked for by the operator stands until it succeeds (retried with backoff).
        var renewalAsked = false
        while !Task.isCancelled {
            let now = Date()
            let forced = entry.wakeup.takeSignal()
            if forced { renewalAsked = true }
            let stored = ServerTLS.storedACMEMaterial(acme)
            if let stored { serve(stored, index: index) }
            // When a new certificate is due: at once without one, else by ARI or a third of
            // the lifetime before it ends.
            var due = now
            if let stored, let leaf = Self.leaf(of: stored) {
                if let window = renewalWindow, window.certificate == stored.fingerprint, now < window.checkAfter {
                    due = window.at
                } else {
                    let (at, checkAfter) = await renewalTime(of: leaf, acme: acme)
                    renewalWindow = (stored.fingerprint, at, checkAfter)
                    due = at
                }
            }
            let wake: Date
            if forced || ((renewalAsked || now >= due) && (retryAt.map { now >= $0 } ?? true)) {
                update(index) { $0.state = .ordering }
                do {
                    try await obtain(index, forced: renewalAsked, replacing: stored)
                    backoff.reset()
                    retryAt = nil
                    renewalAsked = false
                    continue
                } catch is CancellationError {
                    return
                } catch {
                    if Task.isCancelled { return }
                    let description = (error as? ACMEError)?.description ?? "\(error)"
                    var delay = Double(backoff.next().nanoseconds) / 1e9
                    if let retryAfter = (error as? ACMEError)?.retryAfter {
                        delay = max(delay, min(retryAfter, 86_400))
                    }
                    let next = Date().addingTimeInterval(delay)
                    retryAt = next
                    Counter(label: "wssgate_acme_orders_total", dimensions: [("result", "failure")]).increment()
                    // The status first: whoever reads the log line finds the status it tells of.
                    update(index) { status in
                        status.failures += 1
                        status.lastError = description
                        status.nextAttempt = next
                        status.state =
                            ServerTLS.storedACMEMaterial(acme).map { $0.notValidAfter > Date() } == true
                            ? .valid : .pending
                    }
                    logger.warning(
                        "ACME order failed",
                        metadata: [
                            "listener": .string(entry.names.joined(separator: ",")),
                            "domains": .string(acme.domains.joined(separator: ",")),
                            "error": .string(description), "retry_in": .string("\((delay * 10).rounded() / 10)s"),
                        ]
                    )
                    wake = next
                }
            } else {
                wake = renewalAsked ? (retryAt ?? now) : max(due, retryAt ?? due)
                update(index) { $0.nextAttempt = wake }
            }
            await entry.wakeup.sleep(seconds: min(wake.timeIntervalSinceNow, Self.recheckInterval))
        }
    }

    /// The certificate's renewal time: a random moment in the CA's ARI window when it offers
    /// one, else when a third of the lifetime is left; and when to ask the CA again.
    func renewalTime(of leaf: Certificate, acme: ACMESettings) async -> (Date, Date) {
        let lifetime = leaf.notValidAfter.timeIntervalSince(leaf.notValidBefore)
        let fallback = leaf.notValidAfter.addingTimeInterval(-lifetime / 3)
        guard let identifier = Self.renewalIdentifier(of: leaf), let client = try? makeClient(acme) else {
            return (fallback, .distantFuture)
        }
        do {
            guard let (info, retryAfter) = try await client.renewalInfo(certificateID: identifier) else {
                return (fallback, .distantFuture)
            }
            guard let start = HTTPDate.parseRFC3339(info.suggestedWindow.start),
                let end = HTTPDate.parseRFC3339(info.suggestedWindow.end), end >= start
            else {
                return (fallback, Date().addingTimeInterval(Self.recheckInterval))
            }
            let at = start.addingTimeInterval(Double.random(in: 0...1) * end.timeIntervalSince(start))
            return (at, Date().addingTimeInterval(min(max(retryAfter ?? Self.recheckInterval, 60), 86_400)))
        } catch {
            logger.info(
                "ACME renewal information unavailable; renewing at two thirds of the lifetime",
                metadata: ["error": .string("\(error)")]
            )
            return (fallback, Date().addingTimeInterval(Self.recheckInterval))
        }
    }

    /// RFC 9773 §4.1: base64url(authorityKeyIdentifier) "." base64url(serial number).
    static func renewalIdentifier(of leaf: Certificate) -> String? {
        guard let keyIdentifier = try? leaf.extensions.authorityKeyIdentifier?.keyIdentifier else { return nil }
        // The serial's DER INTEGER content: swift-certificates keeps it without the leading zero
        // byte that a set high bit needs, and the CA hashes it with that byte.
        var serial = Array(leaf.serialNumber.bytes)
        if serial.first.map({ $0 & 0x80 != 0 }) ?? true { serial.insert(0, at: 0) }
        return Base64URL.encode(keyIdentifier) + "." + Base64URL.encode(serial)
    }

    static func leaf(of material: CertificateMaterial) -> Certificate? {
        guard let der = try? material.chain.first?.toDERBytes() else { return nil }
        return try? Certificate(derEncoded: der)
    }

    /// Puts a certificate into service on every listener of the entry, if it is not already.
    func serve(_ material: CertificateMaterial, index: Int) {
        let entry = managed[index]
        for listener in entry.listeners where listener.tls.material.fingerprint != material.fingerprint {
            do {
                try listener.tls.replace(material: material, settings: listener.settings)
                logger.info(
                    "certificate",
                    metadata: [
                        "listener": .string(listener.name), "subject": .string(material.subject),
                        "sha256": .string(material.fingerprint), "not_after": .string("\(material.notValidAfter)"),
                    ]
                )
            } catch {
                logger.error(
                    "cannot serve the stored ACME certificate",
                    metadata: ["listener": .string(listener.name), "error": .string("\(error)")]
                )
            }
        }
        if material.notValidAfter > Date() {
            update(index) { status in
                status.notAfter = material.notValidAfter
                status.state = .valid
            }
        }
        for listener in entry.listeners {
            Gauge(label: "wssgate_tls_certificate_expiry_timestamp_seconds", dimensions: [("listener", listener.name)])
                .record(material.notValidAfter.timeIntervalSince1970)
        }
    }

    func update(_ index: Int, _ change: (inout CertificateStatus) -> Void) {
        statuses.withLockedValue { change(&$0[index]) }
    }

    func makeClient(_ acme: ACMESettings) throws -> ACMEClient {
        var roots: [NIOSSLCertificate]?
        if let bundle = acme.caBundle {
            do {
                roots = try NIOSSLCertificate.fromPEMFile(bundle)
            } catch {
                throw ACMEError(.unreachable, "ca_bundle \(bundle) holds no readable PEM certificate")
            }
        }
        let storage = ACMEStorage(settings: acme)
        try storage.prepare()
        let http = try ACMEHTTPClient(group: group, trustRoots: roots, userAgent: userAgent)
        return ACMEClient(
            directoryURL: acme.directory,
            http: http,
            accountKey: try storage.accountKey(),
            accountURL: try storage.accountURL()
        )
    }
}

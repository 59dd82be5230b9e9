#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What the admin API may ask of the certificates the gateway obtains itself (ACME): their
/// state, and a renewal now. Kept here so the admin API need not know how ACME works.
public protocol CertificateAdministration: Sendable {
    var certificateStatuses: [CertificateStatus] { get }
    /// Orders new certificates now for these listeners (all ACME listeners when nil), ahead of
    /// schedule and past any backoff; answers the listeners that will renew.
    func renewNow(listener: String?) -> [String]
}

/// One certificate kept by ACME, as `GET /v1/certificates` shows it.
public struct CertificateStatus: Sendable, Equatable {
    public enum State: String, Sendable {
        /// A certificate issued by the CA is being served.
        case valid
        /// An order is in progress.
        case ordering
        /// No certificate from the CA yet (or it expired): a self-signed one is being served.
        case pending
    }

    /// The listeners that serve this certificate.
    public var listeners: [String]
    public var domains: [String]
    public var directory: String
    public var state: State
    /// Of the certificate being served.
    public var notAfter: Date?
    /// When the next order is due (renewal, or the next try after a failure).
    public var nextAttempt: Date?
    /// Certificates obtained since start.
    public var issued: Int
    /// Failed orders in a row.
    public var failures: Int
    public var lastError: String?

    public init(
        listeners: [String],
        domains: [String],
        directory: String,
        state: State,
        notAfter: Date? = nil,
        nextAttempt: Date? = nil,
        issued: Int = 0,
        failures: Int = 0,
        lastError: String? = nil
    ) {
        self.listeners = listeners
        self.domains = domains
        self.directory = directory
        self.state = state
        self.notAfter = notAfter
        self.nextAttempt = nextAttempt
        self.issued = issued
        self.failures = failures
        self.lastError = lastError
    }
}

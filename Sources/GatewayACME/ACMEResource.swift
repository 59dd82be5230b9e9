#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The ACME objects the gateway reads (RFC 8555 §7.1), only the fields it uses.
public enum ACMEResource {
    public struct Directory: Decodable, Sendable {
        public var newNonce: String
        public var newAccount: String
        public var newOrder: String
        /// ACME Renewal Information (RFC 9773), where the CA offers it.
        public var renewalInfo: String?
        public var meta: Meta?

        public struct Meta: Decodable, Sendable {
            public var termsOfService: String?
            public var externalAccountRequired: Bool?
        }
    }

    public struct Identifier: Codable, Sendable, Equatable {
        public var type: String
        public var value: String
    }

    public struct Order: Decodable, Sendable {
        /// pending, ready, processing, valid or invalid.
        public var status: String
        public var identifiers: [Identifier]
        public var authorizations: [String]
        public var finalize: String
        public var certificate: String?
        public var error: Problem?
    }

    public struct Authorization: Decodable, Sendable {
        /// pending, valid, invalid, deactivated, expired or revoked.
        public var status: String
        public var identifier: Identifier
        public var challenges: [Challenge]
        public var wildcard: Bool?
    }

    public struct Challenge: Decodable, Sendable {
        public var type: String
        public var url: String
        public var status: String
        public var token: String?
        public var error: Problem?
    }

    /// An error document (RFC 7807, RFC 8555 §6.7).
    public struct Problem: Decodable, Sendable, CustomStringConvertible {
        public var type: String?
        public var detail: String?
        public var status: Int?
        public var subproblems: [Problem]?

        public var description: String {
            var text = detail ?? "no detail"
            if let type {
                let prefix = "urn:ietf:params:acme:error:"
                text += " (\(type.hasPrefix(prefix) ? String(type.dropFirst(prefix.count)) : type))"
            }
            for subproblem in subproblems ?? [] { text += "; \(subproblem)" }
            return text
        }
    }

    /// RFC 9773 §4.2.
    public struct RenewalInfo: Decodable, Sendable {
        public var suggestedWindow: Window
        public var explanationURL: String?

        public struct Window: Decodable, Sendable {
            public var start: String
            public var end: String
        }
    }
}

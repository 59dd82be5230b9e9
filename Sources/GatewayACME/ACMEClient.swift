import Crypto
import GatewayCore
import Logging
import NIOHTTP1

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One account at one ACME server (RFC 8555): signed requests with replay nonces, retried on
/// `badNonce` as §6.5 asks, and the steps of an order. The certificate manager drives it.
package actor ACMEClient {
    /// `badNonce` answers retried per request (Pebble rejects 5% of good nonces on purpose).
    static let badNonceRetries = 10

    let directoryURL: String
    private let http: ACMEHTTPClient
    private let key: P256.Signing.PrivateKey
    private var directory: ACMEResource.Directory?
    private var nonces: [String] = []
    private(set) var accountURL: String?
    /// How many `badNonce` answers were retried (for the logs and the tests).
    private(set) var badNonceRetriesDone = 0

    init(directoryURL: String, http: ACMEHTTPClient, accountKey: P256.Signing.PrivateKey, accountURL: String? = nil) {
        self.directoryURL = directoryURL
        self.http = http
        self.key = accountKey
        self.accountURL = accountURL
    }

    /// The key authorization of a challenge token (RFC 8555 §8.1).
    var thumbprint: String { JSONWebSignature.thumbprint(of: key.publicKey) }

    func directoryResource() async throws -> ACMEResource.Directory {
        if let directory { return directory }
        let response = try await http.send(.GET, directoryURL, accept: "application/json")
        guard response.status == 200 else {
            throw ACMEError(.unreachable, "the directory \(directoryURL) answered \(response.status)")
        }
        let directory = try Self.decode(ACMEResource.Directory.self, response.body, what: "the directory")
        self.directory = directory
        return directory
    }

    // MARK: Account

    /// Creates the account, or finds it again when the key already has one (the server answers
    /// 200 with its URL).
    func ensureAccount(email: String?, externalAccount: (keyID: String, hmacKey: [UInt8])?) async throws -> String {
        if let accountURL { return accountURL }
        let directory = try await directoryResource()
        var members = [#""termsOfServiceAgreed":true"#]
        if let email { members.append(#""contact":[\#(JSONWebSignature.quoted("mailto:" + email))]"#) }
        if let externalAccount {
            members.append(
                #""externalAccountBinding":"#
                    + JSONWebSignature.externalAccountBinding(
                        accountKey: key.publicKey,
                        keyID: externalAccount.keyID,
                        hmacKey: externalAccount.hmacKey,
                        url: directory.newAccount
                    )
            )
        } else if directory.meta?.externalAccountRequired == true {
            throw ACMEError(
                .refused,
                "this CA requires external account binding: set tls.acme.eab_kid and eab_hmac_key"
            )
        }
        let response = try await post(
            directory.newAccount,
            payload: Array("{\(members.joined(separator: ","))}".utf8),
            signer: .jwk
        )
        guard let location = response.headers.first(name: "location") else {
            throw ACMEError(.protocolViolation, "newAccount answered without the account's URL (Location)")
        }
        accountURL = location
        return location
    }

    // MARK: Orders

    /// A new order for these names; `replaces` names the certificate it renews (RFC 9773 §5).
    func newOrder(domains: [String], replaces: String?) async throws -> (url: String, order: ACMEResource.Order) {
        let directory = try await directoryResource()
        let identifiers = domains.map { #"{"type":"dns","value":\#(JSONWebSignature.quoted($0))}"# }.joined(
            separator: ","
        )
        var payload = #"{"identifiers":[\#(identifiers)]"#
        if let replaces { payload += #","replaces":\#(JSONWebSignature.quoted(replaces))"# }
        payload += "}"
        let response = try await post(directory.newOrder, payload: Array(payload.utf8), signer: try accountSigner())
        guard let location = response.headers.first(name: "location") else {
            throw ACMEError(.protocolViolation, "newOrder answered without the order's URL (Location)")
        }
        return (location, try Self.decode(ACMEResource.Order.self, response.body, what: "the order"))
    }

    /// POST-as-GET of a resource, with the server's `Retry-After` (seconds) when it sent one.
    func fetch<Resource: Decodable>(
        _ type: Resource.Type,
        _ url: String
    ) async throws -> (Resource, retryAfter: Double?) {
        let response = try await post(url, payload: nil, signer: try accountSigner())
        return (try Self.decode(type, response.body, what: url), Self.retryAfter(response.headers))
    }

    /// Tells the server a challenge is ready to be checked (RFC 8555 §7.5.1).
    func respond(toChallenge url: String) async throws {
        _ = try await post(url, payload: Array("{}".utf8), signer: try accountSigner())
    }

    func finalize(_ url: String, csr: [UInt8]) async throws -> ACMEResource.Order {
        let payload = #"{"csr":"\#(Base64URL.encode(csr))"}"#
        let response = try await post(url, payload: Array(payload.utf8), signer: try accountSigner())
        return try Self.decode(ACMEResource.Order.self, response.body, what: "the finalized order")
    }

    /// The issued chain, PEM, leaf first.
    func downloadCertificate(_ url: String) async throws -> [UInt8] {
        let response = try await post(
            url,
            payload: nil,
            signer: try accountSigner(),
            accept: "application/pem-certificate-chain"
        )
        return response.body
    }

    /// ARI: the window the CA suggests renewing in, or nil when it does not offer ARI.
    func renewalInfo(certificateID: String) async throws -> (ACMEResource.RenewalInfo, retryAfter: Double?)? {
        guard let base = try await directoryResource().renewalInfo else { return nil }
        let url = base.hasSuffix("/") ? base + certificateID : base + "/" + certificateID
        let response = try await http.send(.GET, url, accept: "application/json")
        guard response.status == 200 else {
            throw ACMEError(
                .refused,
                "renewalInfo answered \(response.status)",
                retryAfter: Self.retryAfter(response.headers)
            )
        }
        return (
            try Self.decode(ACMEResource.RenewalInfo.self, response.body, what: "the renewal information"),
            Self.retryAfter(response.headers)
        )
    }

    // MARK: Requests

    private func accountSigner() throws -> JSONWebSignature.Signer {
        guard let accountURL else { throw ACMEError(.protocolViolation, "no account yet") }
        return .account(url: accountURL)
    }

    private func nonce() async throws -> String {
        if let nonce = nonces.popLast() { return nonce }
        let directory = try await directoryResource()
        let response = try await http.send(.HEAD, directory.newNonce)
        guard let nonce = response.headers.first(name: "replay-nonce") else {
            throw ACMEError(.protocolViolation, "newNonce answered \(response.status) without a Replay-Nonce")
        }
        return nonce
    }

    /// A signed POST: a fresh nonce each try, `badNonce` retried, any other problem thrown.
    private func post(
        _ url: String,
        payload: [UInt8]?,
        signer: JSONWebSignature.Signer,
        accept: String? = nil
    ) async throws -> ACMEHTTPClient.Response {
        var attempt = 0
        while true {
            let body = try JSONWebSignature.sign(
                payload: payload,
                url: url,
                nonce: try await nonce(),
                key: key,
                signer: signer
            )
            let response = try await http.send(
                .POST,
                url,
                body: body,
                contentType: "application/jose+json",
                accept: accept
            )
            if let nonce = response.headers.first(name: "replay-nonce") {
                nonces.append(nonce)
                if nonces.count > 8 { nonces.removeFirst() }
            }
            if response.status < 400 { return response }
            let problem = try? JSONDecoder().decode(ACMEResource.Problem.self, from: Data(response.body))
            if problem?.type == "urn:ietf:params:acme:error:badNonce", attempt < Self.badNonceRetries {
                attempt += 1
                badNonceRetriesDone += 1
                continue
            }
            throw ACMEError(
                .refused,
                "\(url) answered \(response.status): \(problem?.description ?? String(decoding: response.body.prefix(200), as: UTF8.self))",
                problemType: problem?.type,
                retryAfter: Self.retryAfter(response.headers)
            )
        }
    }

    /// A response body as the resource RFC 8555 describes, or an ACME error naming `what`.
    package static func decode<Resource: Decodable>(
        _ type: Resource.Type,
        _ body: [UInt8],
        what: String
    ) throws -> Resource {
        do {
            return try JSONDecoder().decode(type, from: Data(body))
        } catch {
            throw ACMEError(.protocolViolation, "\(what) is not the JSON RFC 8555 describes (\(error))")
        }
    }

    /// `Retry-After` as seconds from now: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).
    package static func retryAfter(_ headers: HTTPHeaders, now: Date = Date()) -> Double? {
        guard let raw = headers.first(name: "retry-after") else { return nil }
        let value = String(raw.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
        if let seconds = Int(value), seconds >= 0 { return Double(seconds) }
        guard let date = HTTPDate.parse(value) else { return nil }
        return max(0, date.timeIntervalSince(now))
    }
}

import GatewayACME
import NIOHTTP1

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What an ACME server's answers go through: the JSON decoders of RFC 8555's resources (the
/// directory, orders, authorizations, challenges, problem documents, RFC 9773 renewal
/// information), `Retry-After` (seconds or an HTTP-date) and the RFC 3339 times of renewal
/// windows. The first byte picks the resource; the rest is the body, and also the header value.
///
/// Invariants: a body decodes or is refused as a protocol violation, nothing else; a problem
/// describes itself; a `Retry-After` is a wait of zero or more seconds, never negative, NaN
/// or infinite; a date is a real point in time.
enum ACMETarget {
    static let target = FuzzTarget(name: "acme") { data throws(FuzzFailure) in
        var input = FuzzInput(data)
        let choice = input.byte()
        let body = input.rest()
        do {
            switch choice % 7 {
            case 0: _ = try ACMEClient.decode(ACMEResource.Directory.self, body, what: "the directory")
            case 1: _ = try ACMEClient.decode(ACMEResource.Order.self, body, what: "the order")
            case 2: _ = try ACMEClient.decode(ACMEResource.Authorization.self, body, what: "the authorization")
            case 3: _ = try ACMEClient.decode(ACMEResource.Challenge.self, body, what: "the challenge")
            case 4:
                let problem = try ACMEClient.decode(ACMEResource.Problem.self, body, what: "the problem")
                try FuzzFailure.check(!problem.description.isEmpty, "a problem without a description")
            case 5:
                let info = try ACMEClient.decode(ACMEResource.RenewalInfo.self, body, what: "the renewal information")
                for text in [info.suggestedWindow.start, info.suggestedWindow.end] {
                    if let date = HTTPDate.parseRFC3339(text) {
                        try FuzzFailure.check(
                            date.timeIntervalSince1970.isFinite,
                            "\(text.debugDescription) is no time"
                        )
                    }
                }
            default:
                break
            }
        } catch let failure as FuzzFailure {
            throw failure
        } catch let error as ACMEError {
            try FuzzFailure.check(error.code == .protocolViolation, "a body refused with \(error.code)")
        } catch {
            throw FuzzFailure("a body refused with \(error), not an ACME error")
        }

        let text = String(decoding: body.prefix(200), as: UTF8.self)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        if let wait = ACMEClient.retryAfter(HTTPHeaders([("Retry-After", text)]), now: now) {
            try FuzzFailure.check(
                wait.isFinite && wait >= 0,
                "Retry-After \(text.debugDescription) is a wait of \(wait) s"
            )
        }
        for date in [HTTPDate.parse(text), HTTPDate.parseRFC3339(text)].compactMap({ $0 }) {
            try FuzzFailure.check(date.timeIntervalSince1970.isFinite, "\(text.debugDescription) is no time")
        }
    }
}

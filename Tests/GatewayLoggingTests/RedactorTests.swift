import GatewayLogging
import Logging
import XCTest

final class RedactorTests: XCTestCase {
    let redactor = Redactor(parameters: ["token", "api_key"])

    func testQueryParametersAndPairs() {
        XCTAssertEqual(redactor.redact("/chat?token=abc123&room=lobby"), "/chat?token=[redacted]&room=lobby")
        XCTAssertEqual(redactor.redact("/x?API_KEY=zz"), "/x?API_KEY=[redacted]")
        XCTAssertEqual(redactor.redact(#"{"token":"abc","n":1}"#), #"{"token":"[redacted]","n":1}"#)
        XCTAssertEqual(redactor.redact("token: abc def"), "token: [redacted] def")
        XCTAssertEqual(redactor.redact("mytoken=abc"), "mytoken=abc", "only whole names")
        XCTAssertEqual(redactor.redact("token"), "token")
    }

    func testCredentialsCookiesAndJWTs() {
        XCTAssertEqual(redactor.redact("Authorization: Bearer abc.def"), "Authorization: [redacted]")
        XCTAssertEqual(redactor.redact("sent bearer xyz to it"), "sent bearer [redacted] to it")
        XCTAssertEqual(redactor.redact("cookie: a=1; b=2"), "cookie: [redacted]")
        XCTAssertEqual(redactor.redact("Set-Cookie: id=9; Path=/\nnext"), "Set-Cookie: [redacted]\nnext")
        XCTAssertEqual(redactor.redact("jwt eyJhbGciOi.eyJzdWIi.c2ln here"), "jwt [redacted] here")
        XCTAssertEqual(redactor.redact("eyJonly.one"), "eyJonly.one")
    }

    func testMetadataKeysThatNameSecrets() {
        XCTAssertEqual(redactor.redact(.string("x"), key: "Authorization"), .string("[redacted]"))
        XCTAssertEqual(redactor.redact(.string("x"), key: "token"), .string("[redacted]"))
        XCTAssertEqual(
            redactor.redact(.dictionary(["cookie": "c", "path": "/p?token=1"]), key: "request"),
            .dictionary(["cookie": "[redacted]", "path": "/p?token=[redacted]"])
        )
    }
}

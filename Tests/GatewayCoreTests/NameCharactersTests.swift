import GatewayCore
import XCTest

/// Names that look like others are refused: a topic, a user or a tag with a control or an
/// invisible character.
final class NameCharactersTests: XCTestCase {
    func testTopicsRefuseControlsAndInvisibleCharacters() {
        XCTAssertTrue(HubRouteSettings.isValidTopic("news.sport", allowPattern: false))
        XCTAssertTrue(HubRouteSettings.isValidTopic("café.größe", allowPattern: false))
        for topic in [
            "news\u{7F}", "news\u{85}", "news\u{200B}", "news\u{200D}", "a\u{202E}b", "a\u{2066}b", "\u{FEFF}news",
            "soft\u{AD}hyphen", "line\u{2028}break", "word\u{2060}joiner", "tab\tbed",
        ] {
            XCTAssertFalse(HubRouteSettings.isValidTopic(topic, allowPattern: true), topic.debugDescription)
        }
    }

    func testTheRuleIsTheSameForEveryName() {
        XCTAssertTrue(NameCharacters.areAllowed(in: "alice"))
        XCTAssertFalse(NameCharacters.areAllowed(in: "ali\u{200B}ce"))
        XCTAssertFalse(NameCharacters.areAllowed(in: "ali\u{202E}ce"))
    }
}

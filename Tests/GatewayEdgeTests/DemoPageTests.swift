import Foundation
import GatewayCore
import XCTest

@testable import GatewayEdge

final class DemoPageTests: XCTestCase {
    /// The page inside the binary is the page in rootfs/ (scripts/embed-demo.py writes it).
    func testTheBuiltInPageIsTheShippedFile() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let shipped = try Data(contentsOf: root.appendingPathComponent("rootfs/usr/share/wssgate/www/index.html"))
        XCTAssertEqual(DemoPage.html, Array(shipped), "run scripts/embed-demo.py after editing the page")
        let script = try Data(contentsOf: root.appendingPathComponent("rootfs/usr/share/wssgate/www/wssgate.js"))
        XCTAssertEqual(DemoPage.script, Array(script), "run scripts/embed-demo.py after editing wssgate.js")
    }

    func testOnlyThePageAndTheHubClientAreFound() {
        let settings = StaticSettings(root: StaticSettings.builtinDemo)
        XCTAssertEqual(StaticFiles.resolve("", in: settings)?.body, DemoPage.html)
        XCTAssertEqual(StaticFiles.resolve("/index.html", in: settings)?.body, DemoPage.html)
        XCTAssertNil(StaticFiles.resolve("/../etc/passwd", in: settings))
        XCTAssertEqual(StaticFiles.resolve("/wssgate.js", in: settings)?.body, DemoPage.script)
        XCTAssertEqual(StaticFiles.contentType(of: "wssgate.js"), "text/javascript; charset=utf-8")
        XCTAssertNil(StaticFiles.resolve("/app.js", in: settings))
    }
}

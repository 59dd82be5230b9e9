import FuzzTargets
import SessionTestSupport
import XCTest

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Every fuzz target over its committed corpus (seeds, the inputs of crashes once found, kept as
/// regressions, and what `make fuzz` found, minimised), then over a few thousand inputs made from
/// it by seeded mutations — the same every run, so a failure here is reproducible; `make fuzz`
/// is where new inputs are searched for, with coverage.
final class FuzzTargetsTests: XCTestCase {
    static let corpusRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/Corpus")

    /// Mutated inputs per target, after the corpus.
    static let mutations = 2500

    func testEveryTargetHasASeedCorpus() throws {
        for target in FuzzTarget.all {
            let files = try corpus(of: target)
            XCTAssertGreaterThanOrEqual(files.count, 3, "\(target.name) has too small a corpus")
        }
        let folders = try FileManager.default.contentsOfDirectory(atPath: Self.corpusRoot.path)
        XCTAssertEqual(
            Set(folders),
            Set(FuzzTarget.all.map(\.name)),
            "a corpus folder without a target, or the reverse"
        )
    }

    func testClientHello() throws { try replay("client-hello") }
    func testHTTPEdge() throws { try replay("http-edge") }
    func testWebSocketFrames() throws { try replay("websocket-frames") }
    func testWebSocketSession() throws { try replay("websocket-session") }
    func testWorkerFrames() throws { try replay("worker-frames") }
    func testRESP() throws { try replay("resp") }
    func testConfiguration() throws { try replay("configuration") }
    func testACME() throws { try replay("acme") }
    func testJWT() throws { try replay("jwt") }
    func testPercentDecoding() throws { try replay("percent-decoding") }
    func testProxyProtocol() throws { try replay("proxy-protocol") }

    /// A broken invariant is reported with the input, as base64, so it can be put in the corpus.
    func replay(_ name: String) throws {
        let target = try XCTUnwrap(FuzzTarget.named(name))
        let seeds = try corpus(of: target).map { try [UInt8](Data(contentsOf: $0)) }
        XCTAssertFalse(seeds.isEmpty)
        var generator = SplitMix64(seed: 0x5753_5347_4154_45)  // "WSSGATE"
        var inputs = seeds
        for _ in 0..<Self.mutations {
            inputs.append(Mutator.mutate(seeds, using: &generator))
        }
        var failures = 0
        for input in inputs {
            let failure = input.withUnsafeBytes { bytes -> FuzzFailure? in
                do throws(FuzzFailure) {
                    try target.run(bytes)
                    return nil
                } catch {
                    return error
                }
            }
            if let error = failure {
                failures += 1
                XCTFail("\(name): \(error)\ninput (base64): \(Data(input).base64EncodedString())")
                if failures == 5 { return }
            }
        }
    }

    func corpus(of target: FuzzTarget) throws -> [URL] {
        let folder = Self.corpusRoot.appendingPathComponent(target.name)
        return try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
            .map { folder.appendingPathComponent($0) }
    }
}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The admin API's answer to `POST /v1/reload`, as `wssgate reload` reads it.
enum ReloadAnswer {
    private struct Applied: Decodable {
        var changes: [String]
    }

    private struct Refused: Decodable {
        struct Detail: Decodable {
            var code: String
            var message: String
        }
        var error: Detail
    }

    static func changes(_ body: [UInt8]) -> [String] {
        (try? JSONDecoder().decode(Applied.self, from: Data(body)))?.changes ?? []
    }

    static func reason(_ body: [UInt8]) -> String? {
        (try? JSONDecoder().decode(Refused.self, from: Data(body)))?.error.message
    }
}

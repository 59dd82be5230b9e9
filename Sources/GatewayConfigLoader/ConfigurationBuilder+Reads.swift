import Configuration
import GatewayCore
import NIOCore
import NIOWebSocket

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Typed reads: every value is read as text and parsed here, so a wrong type names its key.
extension ConfigurationBuilder {
    func dotted(_ path: [String]) -> String { path.joined(separator: ".") }

    /// A key's text; a secret file's path names its copy when there is one (`CredentialFiles`).
    func string(_ path: [String]) -> String? {
        let value = reader.string(forKey: ConfigKey(path))
        guard let value, CredentialFiles.namesFile(path) else { return value }
        return credentials.path(for: value, exists: Self.exists)
    }

    func list(_ path: [String]) -> [String]? {
        let values =
            reader.stringArray(forKey: ConfigKey(path))
            ?? reader.string(forKey: ConfigKey(path)).map { text in
                text.split(separator: ",").map { String($0).trimmingCharacters(in: " ") }
            }
        guard let values, CredentialFiles.namesFile(path) else { return values }
        return values.map { credentials.path(for: $0, exists: Self.exists) }
    }

    static func exists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    /// `self_signed: true` means the loopback names; a list names the certificate's subjects.
    func selfSignedNames(_ path: [String]) -> [String]? {
        if let text = string(path) {
            switch ValueParsing.bool(text) {
            case true?: return TLSSettings.loopbackNames
            case false?: return []
            case nil: break
            }
        }
        guard let names = list(path) else { return nil }
        if names.count == 1, let flag = ValueParsing.bool(names[0]) { return flag ? TLSSettings.loopbackNames : [] }
        return names
    }

    func required(_ path: [String]) throws(ConfigurationError) -> String {
        guard let value = string(path), !value.isEmpty else {
            throw ConfigurationError(.missingValue, key: dotted(path), "a value is required")
        }
        return value
    }

    /// The key's declaration; every key the builder reads is declared in `ConfigKeys`.
    func spec(_ path: [String]) -> ConfigKeySpec {
        guard let spec = ConfigSchema.spec(for: path) else {
            preconditionFailure("\(dotted(path)) is read but not declared in ConfigKeys")
        }
        return spec
    }

    /// The key's text, or its declared default; nil when it has neither.
    func text(_ path: [String]) -> String? {
        if let value = string(path) { return value }
        if case .value(let text, _) = spec(path).defaultValue { return text }
        return nil
    }

    /// The key's text or its declared default, for keys that have one.
    func stringOrDefault(_ path: [String]) -> String {
        guard let value = text(path) else { preconditionFailure("\(dotted(path)) has no declared default") }
        return value
    }

    /// The key's list, or its declared default.
    func listOrDefault(_ path: [String]) -> [String] {
        if let value = list(path) { return value }
        if case .list(let items) = spec(path).defaultValue { return items }
        return []
    }

    func choice<T: RawRepresentable & CaseIterable>(_ path: [String]) throws(ConfigurationError) -> T
    where T.RawValue == String {
        let text = stringOrDefault(path)
        guard let parsed = T(rawValue: text) else {
            let options = T.allCases.map(\.rawValue).joined(separator: ", ")
            throw ConfigurationError(.invalidValue, key: dotted(path), "'\(text)' is not one of: \(options)")
        }
        return parsed
    }

    func boolean(_ path: [String]) throws(ConfigurationError) -> Bool {
        let text = stringOrDefault(path)
        guard let parsed = ValueParsing.bool(text) else {
            throw ConfigurationError(.wrongType, key: dotted(path), "'\(text)' is not a boolean (true or false)")
        }
        return parsed
    }

    func integer(_ path: [String]) throws(ConfigurationError) -> Int {
        guard let value = try optionalInteger(path) else {
            preconditionFailure("\(dotted(path)) has no declared default")
        }
        return value
    }

    /// An integer within the key's declared range; nil when it is unset and has no default.
    func optionalInteger(_ path: [String]) throws(ConfigurationError) -> Int? {
        guard case .integer(let range) = spec(path).kind else {
            preconditionFailure("\(dotted(path)) is not declared an integer")
        }
        guard let text = text(path) else { return nil }
        guard let parsed = Int(text) else {
            throw ConfigurationError(.wrongType, key: dotted(path), "'\(text)' is not an integer")
        }
        guard range.contains(parsed) else {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(path),
                "\(parsed) is outside \(range.lowerBound)…\(range.upperBound)"
            )
        }
        return parsed
    }

    /// One of the key's declared words, as a close code (`overflow_close_code`: 1013 or 1008, the
    /// two that tell a client why it was dropped for not reading; `lost_close_code`: 1011 or 1012).
    func closeCode(_ path: [String]) throws(ConfigurationError) -> WebSocketErrorCode {
        guard case .word(let words) = spec(path).kind else {
            preconditionFailure("\(dotted(path)) is not declared a word")
        }
        let text = stringOrDefault(path)
        guard words.contains(text), let code = UInt16(text) else {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(path),
                "'\(text)' is not \(words.joined(separator: " or "))"
            )
        }
        return WebSocketErrorCode(code: code)
    }

    /// A non-negative rate per second (fractions allowed: 0.5 is one every two seconds).
    func rate(_ path: [String]) throws(ConfigurationError) -> Double {
        let text = stringOrDefault(path)
        guard let parsed = Double(text), parsed.isFinite else {
            throw ConfigurationError(.wrongType, key: dotted(path), "'\(text)' is not a number")
        }
        guard parsed >= 0, parsed <= 10_000_000 else {
            throw ConfigurationError(.invalidValue, key: dotted(path), "must be from 0 (no limit) to 10000000")
        }
        return parsed
    }

    func bytes(_ path: [String]) throws(ConfigurationError) -> Int {
        guard case .bytes(let range) = spec(path).kind else {
            preconditionFailure("\(dotted(path)) is not declared a byte count")
        }
        let text = stringOrDefault(path)
        guard let parsed = ValueParsing.byteCount(text) else {
            throw ConfigurationError(
                .wrongType,
                key: dotted(path),
                "'\(text)' is not a byte count (such as 65536, 64KiB or 1MiB)"
            )
        }
        guard range.contains(parsed) else {
            throw ConfigurationError(
                .invalidValue,
                key: dotted(path),
                "\(parsed) bytes is outside \(range.lowerBound)…\(range.upperBound)"
            )
        }
        return parsed
    }

    /// A duration that may be switched off with `never`: nil when switched off.
    func optionalDuration(_ path: [String]) throws(ConfigurationError) -> TimeAmount? {
        guard case .durationOrNever = spec(path).kind else {
            preconditionFailure("\(dotted(path)) is not declared a duration or never")
        }
        let text = stringOrDefault(path)
        guard text != "never" else { return nil }
        return try parseDuration(text, path, positive: false)
    }

    func duration(_ path: [String]) throws(ConfigurationError) -> TimeAmount {
        guard case .duration(let positive) = spec(path).kind else {
            preconditionFailure("\(dotted(path)) is not declared a duration")
        }
        return try parseDuration(stringOrDefault(path), path, positive: positive)
    }

    func parseDuration(
        _ text: String,
        _ path: [String],
        positive: Bool
    ) throws(ConfigurationError) -> TimeAmount {
        guard let parsed = ValueParsing.duration(text) else {
            throw ConfigurationError(
                .wrongType,
                key: dotted(path),
                "'\(text)' is not a duration (such as 30, 30s, 500ms or 5m)"
            )
        }
        if positive && parsed <= .zero {
            throw ConfigurationError(.invalidValue, key: dotted(path), "must be longer than zero")
        }
        return parsed
    }
}

extension String {
    func trimmingCharacters(in set: Character) -> String {
        var s = Substring(self)
        while s.first == set { s = s.dropFirst() }
        while s.last == set { s = s.dropLast() }
        return String(s)
    }
}

import GatewayConfigLoader
import GatewayCore

/// The configuration loader on arbitrary text: libyaml, the schema check, and every value's
/// parsing (sizes, durations, addresses, patterns) — what `check-config` and a reload run on a
/// file an operator, or a tool, wrote.
///
/// Invariants: the loader answers a configuration or a `ConfigurationError` with a key or a
/// message, never anything else; a configuration it accepts prints (as `check-config` does)
/// to YAML that loads back to the same configuration.
enum ConfigurationTarget {
    static let target = FuzzTarget(name: "configuration") { data throws(FuzzFailure) in
        let text = String(decoding: data, as: UTF8.self)
        let loader = ConfigurationLoader(filePath: nil)
        let configuration: GatewayConfiguration
        switch Result(catching: { () throws(ConfigurationError) in try loader.load(text: text, source: "fuzz") }) {
        case .success(let loaded):
            configuration = loaded
        case .failure(let error):
            try FuzzFailure.check(!error.description.isEmpty, "a refusal without a description")
            return
        }
        let printed = EffectiveConfiguration.yaml(configuration)
        // Secrets print redacted: such a configuration cannot be read back from its print.
        guard !printed.contains(EffectiveConfiguration.redacted) else { return }
        do {
            let again = try loader.load(text: printed, source: "printed")
            try FuzzFailure.check(again == configuration, "the printed configuration loads as another one:\n\(printed)")
        } catch let failure as FuzzFailure {
            throw failure
        } catch {
            throw FuzzFailure("the printed configuration does not load (\(error)):\n\(printed)")
        }
    }
}

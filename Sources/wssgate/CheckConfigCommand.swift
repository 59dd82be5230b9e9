import ArgumentParser
import GatewayConfigLoader
import GatewayCore

struct CheckConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate a configuration (with environment and --set overrides) and print the effective one.",
        discussion: """
            Exits 0 when the configuration is valid, 2 with a message naming the key when not. \
            Secret files are read from their copies when \(CredentialFiles.environmentVariable) names a folder of them.
            """
    )

    @Argument(help: "The YAML configuration file; without one, the embedded default that `run` serves without one.")
    var file: String?

    @Option(
        name: .customLong("set"),
        help: ArgumentHelp("Override a key: --set routes.echo.max_message_bytes=2MiB", valueName: "key=value")
    )
    var overrides: [String] = []

    /// A unit's `ExecStartPre=` wants the verdict, not a hundred lines of configuration in the
    /// journal at every start.
    @Flag(name: .shortAndLong, help: "Print nothing when the configuration is valid.")
    var quiet = false

    func run() async throws {
        let prepared = try await PreparedGateway.load(filePath: file, overrides: overrides)
        if !quiet { print(EffectiveConfiguration.yaml(prepared.configuration), terminator: "") }
    }
}

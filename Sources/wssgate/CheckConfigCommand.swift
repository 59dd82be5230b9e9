import ArgumentParser
import GatewayConfigLoader

struct CheckConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate a configuration (with environment and --set overrides) and print the effective one.",
        discussion: "Exits 0 when the configuration is valid, 2 with a message naming the key when not."
    )

    @Argument(help: "The YAML configuration file.")
    var file: String

    @Option(
        name: .customLong("set"),
        help: ArgumentHelp("Override a key: --set routes.echo.max_message_bytes=2MiB", valueName: "key=value")
    )
    var overrides: [String] = []

    func run() async throws {
        let prepared = try await PreparedGateway.load(filePath: file, overrides: overrides)
        print(EffectiveConfiguration.yaml(prepared.configuration), terminator: "")
    }
}

import ArgumentParser
import GatewayConfigLoader
import GatewayCore
import Logging

/// `wssgate copy-credentials`: run as root before the gateway starts and before each reload
/// (the shipped unit's `ExecStartPre=+` and `ExecReload=+`), so that a gateway running as an
/// unprivileged user reads certificates and keys that only root may read, such as certbot's
/// `privkey.pem`. See `CredentialFiles`.
struct CopyCredentialsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "copy-credentials",
        abstract:
            "Copy the certificates, keys and token files a configuration names to where the gateway's user may read them.",
        discussion: """
            Run as root. Each file is copied to <to>/<its path>, mode 0440, readable by the group of \
            the folder that holds <to> (folders 0750); copies of files no longer named are removed. \
            The gateway reads the copies when WSSGATE_CREDENTIALS_DIRECTORY names <to>.
            """
    )

    @Option(name: .shortAndLong, help: ArgumentHelp("The YAML configuration file.", valueName: "file"))
    var config: String

    @Option(
        help: ArgumentHelp(
            "The folder of copies (default: $\(CredentialFiles.environmentVariable)).",
            valueName: "folder"
        )
    )
    var to: String?

    @Option(
        name: .customLong("set"),
        help: ArgumentHelp("Override a key: --set log.level=debug", valueName: "key=value")
    )
    var overrides: [String] = []

    func run() async throws {
        var environment = PreparedGateway.environment()
        let folder = to ?? environment[CredentialFiles.environmentVariable]
        // The originals are what is copied, never earlier copies.
        environment[CredentialFiles.environmentVariable] = nil
        let configuration: GatewayConfiguration
        do {
            configuration = try await ConfigurationLoader(
                filePath: config,
                environment: environment,
                overrides: overrides
            ).load()
        } catch {
            CommandLog.refused(error, filePath: config, overrides: overrides)
            throw ExitCode(2)
        }
        let settings = CommandLog.settings(configuration.log)
        CommandLog.bootstrap(settings)
        let logger = Logger(label: "wssgate")
        guard let folder, !folder.isEmpty else {
            logger.error(
                "copy-credentials needs a folder: --to or \(CredentialFiles.environmentVariable)",
                metadata: ["file": .string(config)]
            )
            throw ExitCode(2)
        }
        let files = CredentialCopier.files(of: configuration)
        do {
            let copier = try CredentialCopier(directory: folder)
            try copier.copy(files)
            logger.info(
                "credentials copied",
                metadata: [
                    "files": .stringConvertible(files.count), "folder": .string(folder),
                    "group": .stringConvertible(copier.group),
                ]
            )
        } catch {
            logger.error("cannot copy the credentials", metadata: ["error": .string("\(error)")])
            throw ExitCode(1)
        }
    }
}

import ArgumentParser
import GatewayCore
import GatewayLogging
import Logging
import NIOCore
import NIOHTTP1

/// `wssgate reload`: the shipped unit's `ExecReload=`. It checks the configuration as
/// `check-config` would, asks the running gateway to reload through its admin API
/// (`POST /v1/reload`) and waits for the answer, so `systemctl reload` fails when the reload
/// was refused — a broken file, a certificate that does not load, an address that cannot be
/// bound, a change only a restart can make — and the running configuration stays.
struct ReloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload",
        abstract: "Reload a running gateway; exit 0 when the new configuration is in force, 1 when refused.",
        discussion: """
            Checks the configuration first (exit 2 when it is invalid, and the gateway is not \
            asked), then asks the gateway at admin.address (or --admin) and waits for its answer. \
            With admin.address: off, send SIGHUP instead: the gateway logs the outcome.
            """
    )

    @Option(
        name: .shortAndLong,
        help: ArgumentHelp("The YAML configuration file (or WSSGATE_CONFIG).", valueName: "file")
    )
    var config: String?

    @Option(
        name: .customLong("set"),
        help: ArgumentHelp("Override a key, as the gateway was started with", valueName: "key=value")
    )
    var overrides: [String] = []

    @Option(
        help: ArgumentHelp(
            "The running gateway's admin API, if not the configuration's admin.address.",
            valueName: "unix:/path|host:port"
        )
    )
    var admin: String?

    @Option(help: "Seconds to wait for the gateway's answer (new worker pools may take a while to link).")
    var timeout: Double = 60

    func run() async throws {
        let filePath = config ?? PreparedGateway.environment()["WSSGATE_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        let logSettings = CommandLog.settings(filePath: filePath, overrides: overrides)
        CommandLog.bootstrap(logSettings)
        let prepared = try await PreparedGateway.load(filePath: filePath, overrides: overrides)
        let loaded = CommandLog.settings(prepared.configuration.log)
        logSettings.update(level: loaded.level, format: loaded.format, redactor: loaded.redactor)
        let logger = Logger(label: "wssgate")
        let settings = prepared.configuration.admin
        let address: ListenAddress
        do {
            guard let chosen = try admin.map(ListenAddress.init(parsing:)) ?? settings.address else {
                report(logger, "the admin API is off (admin.address: off): send SIGHUP to the gateway instead")
                throw ExitCode(2)
            }
            address = chosen
        } catch let error as ConfigurationError {
            report(logger, "--admin: \(error.message)")
            throw ExitCode(2)
        }
        var exchange: HTTPExchange
        switch address {
        case .unix(let path): exchange = HTTPExchange(endpoint: .unix(path: path))
        case .tcp(let host, let port): exchange = HTTPExchange(endpoint: .tcp(host: host, port: port, tls: nil))
        case .systemd:
            report(logger, "the admin API binds its own socket: give --admin unix:/path or host:port")
            throw ExitCode(2)
        }
        exchange.method = .POST
        exchange.path = "/v1/reload"
        exchange.timeout = .milliseconds(Int64(timeout * 1000))
        if let token = settings.token { exchange.headers.append(("Authorization", "Bearer \(token)")) }
        let answer: HTTPExchange.Answer
        do {
            answer = try await exchange.send()
        } catch {
            report(logger, "cannot ask the gateway to reload: \(error)")
            throw ExitCode(1)
        }
        guard answer.status == 200 else {
            let reason = ReloadAnswer.reason(answer.body) ?? "status \(answer.status)"
            report(logger, "reload refused: \(reason)")
            throw ExitCode(1)
        }
        let changes = ReloadAnswer.changes(answer.body)
        if CommandLog.journal {
            logger.info("reload applied", metadata: ["changes": .string(changes.joined(separator: "; "))])
        } else {
            print(changes.isEmpty ? "reloaded: nothing changed" : "reloaded: " + changes.joined(separator: "; "))
        }
    }

    /// A failure: a log line at `error` in the journal (where the gateway's own line says more),
    /// a sentence elsewhere.
    private func report(_ logger: Logger, _ sentence: String) {
        if CommandLog.journal {
            logger.error("\(sentence)")
        } else {
            printError("wssgate reload: \(sentence)")
        }
    }
}

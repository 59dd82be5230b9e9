import ArgumentParser

@main
struct WSSGate: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "wssgate",
        abstract: "An all-in-one WSS gateway: TLS, WebSocket, routing.",
        version: version,
        subcommands: [
            RunCommand.self, CheckConfigCommand.self, ReloadCommand.self, CopyCredentialsCommand.self,
            VersionCommand.self, ProbeCommand.self, WorkerCommand.self,
        ],
        defaultSubcommand: RunCommand.self
    )
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the version.")
    func run() {
        print("wssgate \(WSSGate.version)")
    }
}

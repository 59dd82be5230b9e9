import ArgumentParser
import ExampleWorkers

/// `wssgate worker chat|echo`: the example workers, inside the gateway's own binary, so the
/// embedded default's chat and `make bench`'s echo worker need no second executable (each static
/// Swift binary carries its own runtime, at least 7 MB). Users' own workers use the
/// `WSSGateWorker` library or the protocol itself (docs/worker-protocol.md).
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a bundled worker (started by the gateway for a worker route).",
        subcommands: [Chat.self, Echo.self]
    )

    struct Chat: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "chat",
            abstract: "Chat rooms over hub topics (/chat?room=NAME&name=YOU)."
        )
        func run() async throws { try await ChatWorker.run() }
    }

    struct Echo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "echo",
            abstract: "Every message back to its sender."
        )
        func run() async throws { try await EchoWorker.run() }
    }
}

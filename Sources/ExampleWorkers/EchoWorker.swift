import WSSGateWorker

/// The echo worker (`wssgate worker echo`): every message goes back to its sender, with its
/// type. Nothing here waits, so the events are taken on the link's event loop (the worker
/// library's fast path). `make bench` measures the worker route with it.
public enum EchoWorker {
    public static func run() async throws {
        let worker = try await Worker.listen(.init(name: "swift-echo")) { event, worker in
            switch event {
            case .open(let connection):
                if connection.verdictRequired { worker.accept(connection.id) }
            case .message(let id, let message):
                worker.send(message, to: id)
            case .closed, .suspended:
                break
            }
        }
        print("wssgate worker echo listening on \(worker.socketPath)")
        // The handler does the work; this task only keeps the process alive until the worker stops.
        for await _ in worker.events {}
    }
}

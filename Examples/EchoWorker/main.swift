import WSSGateWorker

/// Echo worker: every message goes back to its sender, with its type.
let worker = try await Worker.listen(.init(name: "swift-echo"))
print("wssgate-echo-worker listening on \(worker.socketPath)")
for await event in worker.events {
    switch event {
    case .open(let connection):
        if connection.verdictRequired { worker.accept(connection.id) }
    case .message(let id, let message):
        worker.send(message, to: id)
    case .closed:
        break
    }
}

import WSSGateWorker

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#endif

/// A chat member: the room (a hub topic) and the name its messages carry.
private struct Member {
    var room: String
    var name: String
}

/// One chat event as JSON, keys sorted so the output is stable.
private func json(_ fields: [String: String]) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: (try? encoder.encode(fields)) ?? Data("{}".utf8), as: UTF8.self)
}

/// The chat worker (`wssgate worker chat`): rooms are hub topics. Connect to
/// `/chat?room=NAME&name=YOU`; every text message is published to the room as JSON, with join
/// and leave announcements. With `WORKER_AUTH_TOKEN` set, a connection that waits for a verdict
/// must carry `?token=` with that value, or it is refused with 403 before its upgrade completes.
///
/// The embedded default's `/chat` route runs it as a subcommand of the gateway's own binary, so
/// the binary and the image carry no second executable. It is also the example of a worker that
/// awaits its events (`worker.events`).
public enum ChatWorker {
    public static func run() async throws {
        let token = getenv("WORKER_AUTH_TOKEN").map { String(cString: $0) }
        let worker = try await Worker.listen(.init(name: "swift-chat"))
        print("wssgate worker chat listening on \(worker.socketPath)")
        var members: [UInt64: Member] = [:]

        for await event in worker.events {
            switch event {
            case .open(let connection):
                let query = connection.query
                if connection.verdictRequired {
                    if let token, query["token"] != token {
                        worker.reject(connection.id, status: 403, reason: "bad token")
                        continue
                    }
                    worker.accept(connection.id)
                }
                let member = Member(
                    room: "chat." + (query["room"] ?? "lobby"),
                    name: query["name"] ?? "user-\(connection.id)"
                )
                members[connection.id] = member
                worker.subscribe(connection.id, to: member.room)
                if !connection.resumed {
                    worker.publish(.init(text: json(["type": "join", "name": member.name])), to: member.room)
                }
            case .message(let id, let message):
                guard let member = members[id], let text = message.text else { continue }
                worker.publish(
                    .init(text: json(["type": "message", "name": member.name, "text": text])),
                    to: member.room
                )
            case .closed(let id, let code, _):
                guard let member = members.removeValue(forKey: id) else { continue }
                if code != 1006 {
                    worker.publish(.init(text: json(["type": "leave", "name": member.name])), to: member.room)
                }
            case .suspended(let id):
                // The member stays in the room (the subscription is the connection's, kept by
                // the gateway); it comes back as a resumed open with the same query.
                members[id] = nil
            }
        }
    }
}

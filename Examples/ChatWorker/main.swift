import WSSGateWorker

#if canImport(Glibc)
import Glibc
#endif

/// Chat worker: rooms are hub topics. Connect to `/chat?room=NAME&name=YOU`; every text message
/// is published to the room as JSON, with join and leave announcements. With
/// `WORKER_AUTH_TOKEN` set, a connection that waits for a verdict must carry `?token=` with
/// that value, or it is refused with 403 before its upgrade completes.

struct Member {
    var room: String
    var name: String
}

func json(_ fields: [(String, String)]) -> String {
    func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
    return "{" + fields.map { "\(quote($0.0)):\(quote($0.1))" }.joined(separator: ",") + "}"
}

let token = getenv("WORKER_AUTH_TOKEN").map { String(cString: $0) }
let worker = try await Worker.listen(.init(name: "swift-chat"))
print("wssgate-chat-worker listening on \(worker.socketPath)")
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
        let member = Member(room: "chat." + (query["room"] ?? "lobby"), name: query["name"] ?? "user-\(connection.id)")
        members[connection.id] = member
        worker.subscribe(connection.id, to: member.room)
        if !connection.resumed {
            worker.publish(.init(text: json([("type", "join"), ("name", member.name)])), to: member.room)
        }
    case .message(let id, let message):
        guard let member = members[id], let text = message.text else { continue }
        worker.publish(.init(text: json([("type", "message"), ("name", member.name), ("text", text)])), to: member.room)
    case .closed(let id, let code, _):
        guard let member = members.removeValue(forKey: id) else { continue }
        if code != 1006 {
            worker.publish(.init(text: json([("type", "leave"), ("name", member.name)])), to: member.room)
        }
    }
}

import GatewayCore
import GatewayHTTPBackend
import GatewayWebSocket
import NIOCore
import NIOWebSocket

/// The commands of an `http` route's app (docs/http-backend.md): its answer's body, JSON or the
/// compact binary form, by the first byte of the input.
///
/// Invariants: every command taken names a valid topic, user, tag and close code, and carries
/// text that is UTF-8; an answer is taken whole or refused whole (a binary answer cut short is
/// refused or is an earlier, whole list); decoding is deterministic.
enum HTTPCommandsTarget {
    static let target = FuzzTarget(name: "http-commands") { data throws(FuzzFailure) in
        var input = FuzzInput(data)
        let binary = input.byte() & 1 == 1
        let bytes = input.rest()
        let type = binary ? HTTPBackendCommands.binaryType : "application/json"
        let body = ByteBuffer(bytes: bytes)
        let first = try? HTTPBackendCommands.decode(contentType: type, body: body)
        let again = try? HTTPBackendCommands.decode(contentType: type, body: body)
        try FuzzFailure.check(first == again, "the same answer decodes two ways")
        guard let commands = first else { return }
        for command in commands { try check(command) }
        if binary, bytes.count > 1 {
            let cut = ByteBuffer(bytes: bytes.dropLast())
            if let shorter = try? HTTPBackendCommands.decode(contentType: type, body: cut) {
                try FuzzFailure.check(
                    shorter.count < commands.count && commands.starts(with: shorter),
                    "an answer cut by one byte decodes to \(shorter.count) commands, not a whole prefix of \(commands.count)"
                )
            }
        }
    }

    private static func check(_ command: HTTPBackendCommand) throws(FuzzFailure) {
        func name(_ value: String) throws(FuzzFailure) {
            try FuzzFailure.check(
                SessionDirectory.Identity.isValidName(value),
                "\(value.debugDescription) taken as a name"
            )
        }
        func target(_ target: HTTPBackendCommand.Target) throws(FuzzFailure) {
            switch target {
            case .this, .connection: break
            case .user(let value), .tag(let value): try name(value)
            }
        }
        func message(_ kind: WebSocketMessage.Kind, _ data: ByteBuffer) throws(FuzzFailure) {
            try FuzzFailure.check(kind == .binary || UTF8Validator.isValid(data), "text that is not UTF-8 taken")
        }
        switch command {
        case .send(let to, let kind, let data):
            try target(to)
            try message(kind, data)
        case .close(let to, let code, _):
            try target(to)
            try FuzzFailure.check(WebSocketErrorCode.isValidOnWire(code), "close code \(code) taken")
        case .subscribe(let topic), .unsubscribe(let topic):
            try FuzzFailure.check(
                HubRouteSettings.isValidTopic(topic, allowPattern: true),
                "topic \(topic.debugDescription) taken"
            )
        case .publish(let topic, let kind, let data):
            try FuzzFailure.check(
                HubRouteSettings.isValidTopic(topic, allowPattern: false),
                "topic \(topic.debugDescription) taken"
            )
            try message(kind, data)
        case .identify(let user, let add, let remove):
            if case .some(.some(let user)) = user { try name(user) }
            for tag in add + remove { try name(tag) }
        }
    }
}

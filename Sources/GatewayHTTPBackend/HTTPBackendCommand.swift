import FoundationEssentials
import GatewayCore
import GatewayHub
import GatewayWebSocket
import NIOCore
import NIOWebSocket

/// One thing an app asks for in its answer to an event (docs/http-backend.md, "Commands").
public enum HTTPBackendCommand: Sendable, Equatable {
    /// Whom a `send` or `close` is for.
    public enum Target: Sendable, Equatable {
        /// The connection the event was about.
        case this
        /// Any connection of the gateway (or of the cluster), by id.
        case connection(UInt64)
        /// Every connection of a user, cluster-wide.
        case user(String)
        /// Every connection with a tag, cluster-wide.
        case tag(String)
    }

    case send(Target, kind: WebSocketMessage.Kind, data: ByteBuffer)
    case close(Target, code: UInt16, reason: String)
    /// The event's connection subscribes to a topic or pattern.
    case subscribe(String)
    case unsubscribe(String)
    case publish(topic: String, kind: WebSocketMessage.Kind, data: ByteBuffer)
    /// Changes the event's connection's identity: its user id (`.some(nil)` clears it; nil
    /// leaves it), then tags added, then tags removed.
    case identify(user: String??, add: [String], remove: [String])
}

/// Why an app's answer could not be carried out; the event's client is closed with 1011.
public struct HTTPBackendCommandError: Error, CustomStringConvertible, Equatable {
    public enum Code: String, Sendable {
        case malformed
        case invalidValue = "invalid-value"
        case unknownCommand = "unknown-command"
    }
    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "\(code.rawValue): \(message)" }
}

/// Reads an answer's body into commands, by its `Content-Type`: `application/json` (an array of
/// command objects, or an object with a `commands` array), the compact binary form
/// `application/vnd.wssgate.commands`, `text/plain` (one text message to the connection),
/// `application/octet-stream` (one binary message). An empty body is no command.
public enum HTTPBackendCommands {
    public static let binaryType = "application/vnd.wssgate.commands"

    public static func decode(
        contentType: String?,
        body: ByteBuffer
    ) throws(HTTPBackendCommandError)
        -> [HTTPBackendCommand]
    {
        guard body.readableBytes > 0 else { return [] }
        let type = String((contentType ?? "").prefix { $0 != ";" }.filter { $0 != " " && $0 != "\t" }).lowercased()
        switch type {
        case "application/json":
            return try decodeJSON(body)
        case binaryType:
            return try decodeBinary(body)
        case "text/plain", "text/html", "":
            guard UTF8Validator.isValid(body) else {
                throw HTTPBackendCommandError(.invalidValue, "a text answer that is not UTF-8")
            }
            return [.send(.this, kind: .text, data: body)]
        case "application/octet-stream":
            return [.send(.this, kind: .binary, data: body)]
        default:
            throw HTTPBackendCommandError(
                .malformed,
                "an answer of type '\(type)': commands are application/json or \(binaryType)"
            )
        }
    }

    // MARK: JSON

    /// A command object: `op` and the fields that op takes.
    private struct JSONCommand: Decodable {
        var op: String
        var text: String?
        var binary: String?
        var connection: UInt64?
        var user: String?
        var tag: String?
        var topic: String?
        var code: UInt16?
        var reason: String?
        var tags: [String]?
        var remove: [String]?
        /// `"user": null` in `identify` clears the user; absent leaves it.
        var clearsUser = false

        enum CodingKeys: String, CodingKey {
            case op, text, binary, connection, user, tag, topic, code, reason, tags, remove
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            op = try container.decode(String.self, forKey: .op)
            text = try container.decodeIfPresent(String.self, forKey: .text)
            binary = try container.decodeIfPresent(String.self, forKey: .binary)
            connection = try container.decodeIfPresent(UInt64.self, forKey: .connection)
            user = try container.decodeIfPresent(String.self, forKey: .user)
            if container.contains(.user) { clearsUser = try container.decodeNil(forKey: .user) }
            tag = try container.decodeIfPresent(String.self, forKey: .tag)
            topic = try container.decodeIfPresent(String.self, forKey: .topic)
            code = try container.decodeIfPresent(UInt16.self, forKey: .code)
            reason = try container.decodeIfPresent(String.self, forKey: .reason)
            tags = try container.decodeIfPresent([String].self, forKey: .tags)
            remove = try container.decodeIfPresent([String].self, forKey: .remove)
        }
    }

    private struct Wrapped: Decodable { var commands: [JSONCommand] }

    static func decodeJSON(_ body: ByteBuffer) throws(HTTPBackendCommandError) -> [HTTPBackendCommand] {
        let data = Data(body.readableBytesView)
        let objects: [JSONCommand]
        do {
            if body.readableBytesView.first(where: { $0 > 0x20 }) == UInt8(ascii: "[") {
                objects = try JSONDecoder().decode([JSONCommand].self, from: data)
            } else {
                objects = try JSONDecoder().decode(Wrapped.self, from: data).commands
            }
        } catch {
            throw HTTPBackendCommandError(.malformed, "not a JSON array of commands: \(error)")
        }
        var commands: [HTTPBackendCommand] = []
        for (index, object) in objects.enumerated() {
            commands.append(try command(object, at: index))
        }
        return commands
    }

    private static func command(
        _ object: JSONCommand,
        at index: Int
    ) throws(HTTPBackendCommandError)
        -> HTTPBackendCommand
    {
        func fail(_ message: String) -> HTTPBackendCommandError {
            HTTPBackendCommandError(.invalidValue, "command \(index) (\(object.op)): \(message)")
        }
        func target() throws(HTTPBackendCommandError) -> HTTPBackendCommand.Target {
            let named = [object.connection != nil, object.user != nil, object.tag != nil].filter { $0 }.count
            guard named <= 1 else { throw fail("name one of connection, user and tag") }
            if let id = object.connection { return .connection(id) }
            if let user = object.user { return .user(try name(user, "user")) }
            if let tag = object.tag { return .tag(try name(tag, "tag")) }
            return .this
        }
        func name(_ value: String, _ field: String) throws(HTTPBackendCommandError) -> String {
            guard SessionDirectory.Identity.isValidName(value) else {
                throw fail("\(field) '\(value)' is empty, too long or has control characters")
            }
            return value
        }
        func topic(allowPattern: Bool) throws(HTTPBackendCommandError) -> String {
            guard let topic = object.topic else { throw fail("needs topic") }
            guard HubRouteSettings.isValidTopic(topic, allowPattern: allowPattern) else {
                throw fail("'\(topic)' is not a topic\(allowPattern ? ", 'prefix.*' or '*'" : "")")
            }
            return topic
        }
        func message() throws(HTTPBackendCommandError) -> (WebSocketMessage.Kind, ByteBuffer) {
            switch (object.text, object.binary) {
            case (let text?, nil): return (.text, ByteBuffer(string: text))
            case (nil, let binary?):
                guard let bytes = Data(base64Encoded: binary) else { throw fail("binary is not base64") }
                return (.binary, ByteBuffer(bytes: bytes))
            default: throw fail("needs text or binary (one of them)")
            }
        }
        switch object.op {
        case "send":
            let (kind, data) = try message()
            return .send(try target(), kind: kind, data: data)
        case "close":
            let code = object.code ?? 1000
            guard WebSocketErrorCode.isValidOnWire(code) else { throw fail("\(code) is not a close code") }
            let reason = object.reason ?? ""
            guard reason.utf8.count <= 123 else { throw fail("a close reason has at most 123 bytes") }
            return .close(try target(), code: code, reason: reason)
        case "subscribe": return .subscribe(try topic(allowPattern: true))
        case "unsubscribe": return .unsubscribe(try topic(allowPattern: true))
        case "publish":
            let (kind, data) = try message()
            return .publish(topic: try topic(allowPattern: false), kind: kind, data: data)
        case "identify":
            // Applied in the order written: user, then tags (add), then remove.
            guard object.user != nil || object.clearsUser || object.tags != nil || object.remove != nil else {
                throw fail("needs user, tags or remove")
            }
            if let user = object.user { _ = try name(user, "user") }
            for tag in (object.tags ?? []) + (object.remove ?? []) { _ = try name(tag, "tag") }
            return .identify(
                user: object.user.map { .some($0) } ?? (object.clearsUser ? .some(nil) : nil),
                add: object.tags ?? [],
                remove: object.remove ?? []
            )
        default:
            throw HTTPBackendCommandError(.unknownCommand, "command \(index): no op '\(object.op)'")
        }
    }

    // MARK: Binary

    /// Record by record: an op byte, then its fields (strings: 16-bit length and UTF-8;
    /// payloads: 32-bit length and bytes; integers big-endian). See docs/http-backend.md.
    static func decodeBinary(_ body: ByteBuffer) throws(HTTPBackendCommandError) -> [HTTPBackendCommand] {
        var buffer = body
        var commands: [HTTPBackendCommand] = []
        func truncated() -> HTTPBackendCommandError {
            HTTPBackendCommandError(.malformed, "binary command \(commands.count) is cut short")
        }
        func string() throws(HTTPBackendCommandError) -> String {
            guard let length = buffer.readInteger(as: UInt16.self), let bytes = buffer.readSlice(length: Int(length))
            else { throw truncated() }
            guard UTF8Validator.isValid(bytes) else {
                throw HTTPBackendCommandError(
                    .invalidValue,
                    "binary command \(commands.count): a string that is not UTF-8"
                )
            }
            return String(buffer: bytes)
        }
        func name() throws(HTTPBackendCommandError) -> String {
            let value = try string()
            guard SessionDirectory.Identity.isValidName(value) else {
                throw HTTPBackendCommandError(
                    .invalidValue,
                    "binary command \(commands.count): '\(value)' is not a user or tag"
                )
            }
            return value
        }
        func topic(allowPattern: Bool) throws(HTTPBackendCommandError) -> String {
            let value = try string()
            guard HubRouteSettings.isValidTopic(value, allowPattern: allowPattern) else {
                throw HTTPBackendCommandError(
                    .invalidValue,
                    "binary command \(commands.count): '\(value)' is not a topic"
                )
            }
            return value
        }
        func target() throws(HTTPBackendCommandError) -> HTTPBackendCommand.Target {
            guard let type = buffer.readInteger(as: UInt8.self) else { throw truncated() }
            switch type {
            case 0: return .this
            case 1:
                guard let id = buffer.readInteger(as: UInt64.self) else { throw truncated() }
                return .connection(id)
            case 2: return .user(try name())
            case 3: return .tag(try name())
            default:
                throw HTTPBackendCommandError(.invalidValue, "binary command \(commands.count): target type \(type)")
            }
        }
        func message() throws(HTTPBackendCommandError) -> (WebSocketMessage.Kind, ByteBuffer) {
            guard let type = buffer.readInteger(as: UInt8.self), let length = buffer.readInteger(as: UInt32.self),
                let data = buffer.readSlice(length: Int(length))
            else { throw truncated() }
            switch type {
            case 1:
                guard UTF8Validator.isValid(data) else {
                    throw HTTPBackendCommandError(
                        .invalidValue,
                        "binary command \(commands.count): text that is not UTF-8"
                    )
                }
                return (.text, data)
            case 2: return (.binary, data)
            default:
                throw HTTPBackendCommandError(.invalidValue, "binary command \(commands.count): message type \(type)")
            }
        }
        while let op = buffer.readInteger(as: UInt8.self) {
            switch op {
            case 0x01:
                let to = try target()
                let (kind, data) = try message()
                commands.append(.send(to, kind: kind, data: data))
            case 0x02:
                let to = try target()
                guard let code = buffer.readInteger(as: UInt16.self) else { throw truncated() }
                guard WebSocketErrorCode.isValidOnWire(code) else {
                    throw HTTPBackendCommandError(.invalidValue, "binary command \(commands.count): close code \(code)")
                }
                commands.append(.close(to, code: code, reason: try string()))
            case 0x03: commands.append(.subscribe(try topic(allowPattern: true)))
            case 0x04: commands.append(.unsubscribe(try topic(allowPattern: true)))
            case 0x05:
                let name = try topic(allowPattern: false)
                let (kind, data) = try message()
                commands.append(.publish(topic: name, kind: kind, data: data))
            case 0x06:
                let user = try string()
                if !user.isEmpty, !SessionDirectory.Identity.isValidName(user) {
                    throw HTTPBackendCommandError(
                        .invalidValue,
                        "binary command \(commands.count): '\(user)' is not a user"
                    )
                }
                commands.append(.identify(user: .some(user.isEmpty ? nil : user), add: [], remove: []))
            case 0x07: commands.append(.identify(user: nil, add: [try name()], remove: []))
            case 0x08: commands.append(.identify(user: nil, add: [], remove: [try name()]))
            default:
                throw HTTPBackendCommandError(.unknownCommand, "binary command \(commands.count): op \(op)")
            }
        }
        return commands
    }
}

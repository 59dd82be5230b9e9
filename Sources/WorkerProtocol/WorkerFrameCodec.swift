import NIOCore

/// Serialises and parses `WorkerFrame`s. Parsing is strict: every field must be present, nothing
/// may follow the last one, strings must be UTF-8 — a peer that gets the format wrong is told so
/// at once rather than half-understood.
public enum WorkerFrameCodec {
    /// Bytes of the length field.
    public static let lengthFieldBytes = 4
    /// What a `message` or `send` frame's length counts besides the payload: type, connection
    /// and kind. A peer's `max_frame_bytes` minus this is the largest message it takes.
    public static let messageOverhead = 1 + 8 + 1

    /// The length field of `open` (what a peer's `max_frame_bytes` is compared with).
    public static func length(of open: WorkerFrame.Open) -> Int {
        open.fields.reduce(1 + 8 + 1 + 2 + (open.attachment?.readableBytes ?? 0)) {
            $0 + 4 + $1.0.utf8.count + $1.1.utf8.count
        }
    }

    public static func encode(_ frame: WorkerFrame, into buffer: inout ByteBuffer) {
        _ = encodeHead(frame, into: &buffer, separatingPayloadsFrom: .max)
    }

    /// Appends `frame` to `buffer`, except a payload of `separatingPayloadsFrom` bytes or more:
    /// that one is returned, to be written right after the buffer instead of copied into it (the
    /// length field counts it either way).
    public static func encodeHead(
        _ frame: WorkerFrame,
        into buffer: inout ByteBuffer,
        separatingPayloadsFrom threshold: Int
    ) -> ByteBuffer? {
        var separate: ByteBuffer?
        func writePayload(_ payload: ByteBuffer) {
            if payload.readableBytes >= threshold {
                separate = payload
            } else {
                buffer.writeImmutableBuffer(payload)
            }
        }
        let start = buffer.writerIndex
        buffer.writeInteger(UInt32(0))  // length, patched below
        buffer.writeInteger(frame.type.rawValue)
        switch frame {
        case .hello(let hello):
            buffer.writeInteger(WorkerFrame.Hello.magic)
            buffer.writeInteger(hello.minVersion)
            buffer.writeInteger(hello.maxVersion)
            buffer.writeInteger(hello.maxFrameBytes)
            writeString16(hello.gateway, into: &buffer)
        case .helloAck(let ack):
            buffer.writeInteger(WorkerFrame.Hello.magic)
            buffer.writeInteger(ack.version)
            buffer.writeInteger(ack.maxFrameBytes)
            buffer.writeInteger(ack.initialCredit)
            writeString16(ack.worker, into: &buffer)
        case .open(let open):
            buffer.writeInteger(open.connection)
            let flags = (open.resumed ? 1 : 0) | (open.verdictRequired ? 2 : 0) | (open.attachment != nil ? 4 : 0)
            buffer.writeInteger(UInt8(flags))
            buffer.writeInteger(UInt16(open.fields.count))
            for (name, value) in open.fields {
                writeString16(name, into: &buffer)
                writeString16(value, into: &buffer)
            }
            if let attachment = open.attachment { buffer.writeImmutableBuffer(attachment) }
        case .message(let connection, let kind, let payload), .send(let connection, let kind, let payload):
            buffer.writeInteger(connection)
            buffer.writeInteger(kind.rawValue)
            writePayload(payload)
        case .closed(let connection, let code, let reason), .close(let connection, let code, let reason):
            buffer.writeInteger(connection)
            buffer.writeInteger(code)
            buffer.writeString(reason)
        case .accept(let connection), .suspend(let connection), .release(let connection):
            buffer.writeInteger(connection)
        case .attach(let connection, let data):
            buffer.writeInteger(connection)
            buffer.writeImmutableBuffer(data)
        case .reject(let connection, let status, let reason):
            buffer.writeInteger(connection)
            buffer.writeInteger(status)
            buffer.writeString(reason)
        case .subscribe(let connection, let topic), .unsubscribe(let connection, let topic):
            buffer.writeInteger(connection)
            buffer.writeString(topic)
        case .publish(let topic, let kind, let payload):
            buffer.writeInteger(kind.rawValue)
            writeString16(topic, into: &buffer)
            writePayload(payload)
        case .credit(let connection, let messages, let bytes):
            buffer.writeInteger(connection)
            buffer.writeInteger(messages)
            buffer.writeInteger(bytes)
        case .subscribed(let subscribed):
            buffer.writeInteger(subscribed.connection)
            buffer.writeInteger(subscribed.status.rawValue)
            buffer.writeInteger(subscribed.position.offset)
            writeString16(subscribed.position.epoch, into: &buffer)
            buffer.writeInteger(subscribed.missed)
            buffer.writeString(subscribed.topic)
        case .recorded(let request, let status, let position):
            buffer.writeInteger(request)
            buffer.writeInteger(status.rawValue)
            buffer.writeInteger(position.offset)
            writeString16(position.epoch, into: &buffer)
        case .resume(let connection, let since, let topic):
            buffer.writeInteger(connection)
            buffer.writeInteger(since.offset)
            writeString16(since.epoch, into: &buffer)
            buffer.writeString(topic)
        case .record(let request, let topic, let kind, let payload):
            buffer.writeInteger(request)
            buffer.writeInteger(kind.rawValue)
            writeString16(topic, into: &buffer)
            writePayload(payload)
        case .identify(let connection, let user, let add, let remove):
            buffer.writeInteger(connection)
            buffer.writeInteger(UInt8(user != nil ? 1 : 0))
            writeString16(user ?? "", into: &buffer)
            for tags in [add, remove] {
                buffer.writeInteger(UInt16(tags.count))
                for tag in tags { writeString16(tag, into: &buffer) }
            }
        case .sendTo(let target, let kind, let payload):
            writeAddressee(target, into: &buffer)
            buffer.writeInteger(kind.rawValue)
            writePayload(payload)
        case .closeTo(let target, let code, let reason):
            writeAddressee(target, into: &buffer)
            buffer.writeInteger(code)
            buffer.writeString(reason)
        }
        let length = buffer.writerIndex - start - lengthFieldBytes + (separate?.readableBytes ?? 0)
        buffer.setInteger(UInt32(length), at: start)
        return separate
    }

    public static func encode(_ frame: WorkerFrame, allocator: ByteBufferAllocator = .init()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 64)
        encode(frame, into: &buffer)
        return buffer
    }

    /// Parses one frame body (after the length field: type and fields).
    public static func decode(body: ByteBuffer) throws(WorkerProtocolError) -> WorkerFrame {
        var body = body
        guard let rawType = body.readInteger(as: UInt8.self) else { throw truncated("type") }
        guard let type = WorkerFrame.FrameType(rawValue: rawType) else {
            throw WorkerProtocolError(.unknownFrameType, "unknown frame type 0x\(String(rawType, radix: 16))")
        }
        let frame: WorkerFrame
        switch type {
        case .hello:
            try readMagic(&body)
            frame = .hello(
                .init(
                    minVersion: try integer(&body, "min_version"),
                    maxVersion: try integer(&body, "max_version"),
                    maxFrameBytes: try integer(&body, "max_frame_bytes"),
                    gateway: try string16(&body, "gateway")
                )
            )
        case .helloAck:
            try readMagic(&body)
            frame = .helloAck(
                .init(
                    version: try integer(&body, "version"),
                    maxFrameBytes: try integer(&body, "max_frame_bytes"),
                    initialCredit: try integer(&body, "initial_credit"),
                    worker: try string16(&body, "worker")
                )
            )
        case .open:
            let connection: UInt64 = try integer(&body, "connection")
            let flags: UInt8 = try integer(&body, "flags")
            // Bits 3–7 are reserved: a peer that sets one means something this version cannot
            // read, and dropping it silently would half-understand the frame.
            guard flags & ~7 == 0 else {
                throw WorkerProtocolError(.invalidValue, "open flags 0x\(String(flags, radix: 16)) set reserved bits")
            }
            let count: UInt16 = try integer(&body, "field count")
            var fields: [(String, String)] = []
            fields.reserveCapacity(Int(count))
            for _ in 0..<count {
                fields.append((try string16(&body, "field name"), try string16(&body, "field value")))
            }
            // Bit 2: the attachment takes the rest of the frame.
            let attachment = flags & 4 != 0 ? body.readSlice(length: body.readableBytes)! : nil
            frame = .open(
                .init(
                    connection: connection,
                    resumed: flags & 1 != 0,
                    verdictRequired: flags & 2 != 0,
                    fields: fields,
                    attachment: attachment
                )
            )
        case .message, .send:
            let connection: UInt64 = try integer(&body, "connection")
            let kind = try messageKind(&body)
            let payload = body.readSlice(length: body.readableBytes)!
            frame =
                type == .message
                ? .message(connection: connection, kind: kind, payload: payload)
                : .send(connection: connection, kind: kind, payload: payload)
        case .closed, .close:
            let connection: UInt64 = try integer(&body, "connection")
            let code: UInt16 = try integer(&body, "code")
            let reason = try rest(&body, "reason")
            frame =
                type == .closed
                ? .closed(connection: connection, code: code, reason: reason)
                : .close(connection: connection, code: code, reason: reason)
        case .accept:
            frame = .accept(connection: try integer(&body, "connection"))
        case .suspend:
            frame = .suspend(connection: try integer(&body, "connection"))
        case .release:
            frame = .release(connection: try integer(&body, "connection"))
        case .attach:
            let connection: UInt64 = try integer(&body, "connection")
            frame = .attach(connection: connection, data: body.readSlice(length: body.readableBytes)!)
        case .reject:
            let connection: UInt64 = try integer(&body, "connection")
            let status: UInt16 = try integer(&body, "status")
            guard (400...599).contains(status) else {
                throw WorkerProtocolError(.invalidValue, "reject status \(status) is not 4xx or 5xx")
            }
            frame = .reject(connection: connection, status: status, reason: try rest(&body, "reason"))
        case .subscribe, .unsubscribe:
            let connection: UInt64 = try integer(&body, "connection")
            let topic = try rest(&body, "topic")
            guard !topic.isEmpty else { throw WorkerProtocolError(.invalidValue, "empty topic") }
            frame =
                type == .subscribe
                ? .subscribe(connection: connection, topic: topic) : .unsubscribe(connection: connection, topic: topic)
        case .publish:
            let kind = try messageKind(&body)
            let topic = try string16(&body, "topic")
            guard !topic.isEmpty else { throw WorkerProtocolError(.invalidValue, "empty topic") }
            frame = .publish(topic: topic, kind: kind, payload: body.readSlice(length: body.readableBytes)!)
        case .credit:
            frame = .credit(
                connection: try integer(&body, "connection"),
                messages: try integer(&body, "messages"),
                bytes: try integer(&body, "bytes")
            )
        case .subscribed:
            let connection: UInt64 = try integer(&body, "connection")
            let raw: UInt8 = try integer(&body, "status")
            guard let status = WorkerFrame.Subscribed.Status(rawValue: raw) else {
                throw WorkerProtocolError(.invalidValue, "subscribed status \(raw) is not 1–4")
            }
            let position = WorkerFrame.Position(
                offset: try integer(&body, "offset"),
                epoch: try string16(&body, "epoch")
            )
            let missed: UInt32 = try integer(&body, "missed")
            frame = .subscribed(
                .init(
                    connection: connection,
                    status: status,
                    position: position,
                    missed: missed,
                    topic: try rest(&body, "topic")
                )
            )
        case .recorded:
            let request: UInt32 = try integer(&body, "request")
            let raw: UInt8 = try integer(&body, "status")
            guard let status = WorkerFrame.RecordStatus(rawValue: raw) else {
                throw WorkerProtocolError(.invalidValue, "recorded status \(raw) is not 1–3")
            }
            frame = .recorded(
                request: request,
                status: status,
                position: .init(offset: try integer(&body, "offset"), epoch: try string16(&body, "epoch"))
            )
        case .resume:
            let connection: UInt64 = try integer(&body, "connection")
            let since = WorkerFrame.Position(offset: try integer(&body, "offset"), epoch: try string16(&body, "epoch"))
            let topic = try rest(&body, "topic")
            guard !topic.isEmpty else { throw WorkerProtocolError(.invalidValue, "empty topic") }
            frame = .resume(connection: connection, since: since, topic: topic)
        case .record:
            let request: UInt32 = try integer(&body, "request")
            let kind = try messageKind(&body)
            let topic = try string16(&body, "topic")
            guard !topic.isEmpty else { throw WorkerProtocolError(.invalidValue, "empty topic") }
            frame = .record(
                request: request,
                topic: topic,
                kind: kind,
                payload: body.readSlice(length: body.readableBytes)!
            )
        case .identify:
            let connection: UInt64 = try integer(&body, "connection")
            let flags: UInt8 = try integer(&body, "flags")
            let user = try string16(&body, "user")
            var lists: [[String]] = []
            for field in ["tags added", "tags removed"] {
                let count: UInt16 = try integer(&body, "\(field) count")
                var tags: [String] = []
                for _ in 0..<count { tags.append(try string16(&body, field)) }
                lists.append(tags)
            }
            frame = .identify(
                connection: connection,
                user: flags & 1 != 0 ? user : nil,
                add: lists[0],
                remove: lists[1]
            )
        case .sendTo:
            let target = try addressee(&body)
            let kind = try messageKind(&body)
            frame = .sendTo(target: target, kind: kind, payload: body.readSlice(length: body.readableBytes)!)
        case .closeTo:
            let target = try addressee(&body)
            let code: UInt16 = try integer(&body, "code")
            frame = .closeTo(target: target, code: code, reason: try rest(&body, "reason"))
        }
        guard body.readableBytes == 0 else {
            throw WorkerProtocolError(
                .trailingBytes,
                "\(body.readableBytes) bytes after the last field of a \(type) frame"
            )
        }
        return frame
    }

    // MARK: Fields

    private static func truncated(_ field: String) -> WorkerProtocolError {
        WorkerProtocolError(.truncatedFrame, "frame ends before its \(field)")
    }

    private static func integer<T: FixedWidthInteger>(
        _ body: inout ByteBuffer,
        _ field: String
    ) throws(WorkerProtocolError) -> T {
        guard let value = body.readInteger(as: T.self) else { throw truncated(field) }
        return value
    }

    private static func readMagic(_ body: inout ByteBuffer) throws(WorkerProtocolError) {
        let magic: UInt32 = try integer(&body, "magic")
        guard magic == WorkerFrame.Hello.magic else {
            throw WorkerProtocolError(.badHello, "hello without the WSGW magic")
        }
    }

    private static func messageKind(_ body: inout ByteBuffer) throws(WorkerProtocolError) -> WorkerFrame.MessageKind {
        let raw: UInt8 = try integer(&body, "kind")
        guard let kind = WorkerFrame.MessageKind(rawValue: raw) else {
            throw WorkerProtocolError(.invalidValue, "message kind \(raw) is neither 1 (text) nor 2 (binary)")
        }
        return kind
    }

    private static func string16(_ body: inout ByteBuffer, _ field: String) throws(WorkerProtocolError) -> String {
        let length: UInt16 = try integer(&body, "\(field) length")
        guard let bytes = body.readSlice(length: Int(length)) else { throw truncated(field) }
        return try utf8(bytes, field)
    }

    private static func rest(_ body: inout ByteBuffer, _ field: String) throws(WorkerProtocolError) -> String {
        try utf8(body.readSlice(length: body.readableBytes)!, field)
    }

    private static func utf8(_ bytes: ByteBuffer, _ field: String) throws(WorkerProtocolError) -> String {
        guard let text = String(validating: bytes.readableBytesView, as: UTF8.self) else {
            throw WorkerProtocolError(.invalidValue, "\(field) is not UTF-8")
        }
        return text
    }

    /// `u8` 1 (a user) or 2 (a tag), then the name as `str16`.
    private static func addressee(_ body: inout ByteBuffer) throws(WorkerProtocolError) -> WorkerFrame.Addressee {
        let type: UInt8 = try integer(&body, "target")
        let name = try string16(&body, "target name")
        guard !name.isEmpty else { throw WorkerProtocolError(.invalidValue, "an empty user or tag") }
        switch type {
        case 1: return .user(name)
        case 2: return .tag(name)
        default: throw WorkerProtocolError(.invalidValue, "target \(type) is neither 1 (user) nor 2 (tag)")
        }
    }

    private static func writeAddressee(_ target: WorkerFrame.Addressee, into buffer: inout ByteBuffer) {
        switch target {
        case .user(let name):
            buffer.writeInteger(UInt8(1))
            writeString16(name, into: &buffer)
        case .tag(let name):
            buffer.writeInteger(UInt8(2))
            writeString16(name, into: &buffer)
        }
    }

    private static func writeString16(_ text: String, into buffer: inout ByteBuffer) {
        let bytes = text.utf8.prefix(Int(UInt16.max))
        buffer.writeInteger(UInt16(bytes.count))
        buffer.writeBytes(bytes)
    }
}

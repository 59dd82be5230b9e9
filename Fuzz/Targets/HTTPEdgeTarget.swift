import GatewayConfigLoader
import GatewayCore
import GatewayEdge
import GatewayHub
import GatewayWebSocket
import Logging
import NIOCore
import NIOEmbedded

/// A plain listener's connection as the network reaches it: the request guard, NIO's HTTP/1.1
/// decoder, the gateway's HTTP handler (health paths, the built-in demo page, refusals), upgrade
/// negotiation and, after a 101, a WebSocket session on the echo route or on a hub route with
/// history (the hub protocol's JSON commands, resume with `since`) — all on an
/// `EmbeddedChannel`, fed in reads of the size the first byte picks.
///
/// Invariants: every answer is an HTTP/1.1 status line with a status the gateway gives (never a
/// 5xx it did not mean); after a 101 the bytes are clean server frames; once the connection
/// ends, nothing is left counted (no open connection, session, registered WebSocket or hub
/// subscription).
enum HTTPEdgeTarget {
    static let configurationText = """
        listeners:
          main:
            address: "127.0.0.1:0"
        http:
          max_header_bytes: 2KiB
        routes:
          echo:
            path: /echo
            kind: echo
            max_message_bytes: 4KiB
          hub:
            path: /hub
            kind: hub
            max_message_bytes: 4KiB
            hub:
              subscribe: ["*"]
              publish: ["room.*"]
              history:
                size: 20
                max_bytes: 4KiB
          demo:
            path: /
            kind: static
            static:
              root: "\(StaticSettings.builtinDemo)"

        """

    /// The hub behind the hub route, with an in-memory history on its topics.
    static let hub = Hub()

    static let pipeline: ConnectionPipeline = {
        let configuration = try! ConfigurationLoader(filePath: nil)
            .load(text: configurationText, source: "fuzz")
        let route = configuration.routes.first { $0.name == "hub" }!
        guard case .hub(let rules) = route.backend, let history = rules.history else { fatalError("no hub route") }
        hub.setHistories([try! TopicHistory(route: route.name, settings: history, environment: [:])])
        return ConnectionPipeline(
            configuration: configuration,
            services: ["echo": EchoRouteService(), "hub": HubRouteService(rules: rules, hub: hub)],
            logger: Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() })
        )
    }()

    /// Statuses the gateway answers with; 500 is not one of them (it would be a bug).
    static let statuses: Set<Int> = [
        101, 200, 204, 206, 301, 302, 304, 308, 400, 401, 403, 404, 405, 406, 408, 411, 412, 413, 414, 416,
        417, 426, 429, 431, 501, 503, 505,
    ]

    static let target = FuzzTarget(name: "http-edge") { data throws(FuzzFailure) in
        var input = FuzzInput(data)
        let readSize = Int(input.byte())
        let bytes = input.rest()
        let channel = EmbeddedChannel()
        do {
            try pipeline.configure(channel)
        } catch {
            throw FuzzFailure("the pipeline does not configure: \(error)")
        }
        _ = try? channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40000)).wait()
        let written = EmbeddedConnection.exchange(channel, bytes: bytes, readSize: readSize)

        try checkResponses(written, headRequests: bytes.count >= 4 && containsHEAD(bytes))
        try FuzzFailure.check(
            pipeline.state.httpConnections == 0,
            "\(pipeline.state.httpConnections) connections still counted"
        )
        try FuzzFailure.check(
            pipeline.state.webSocketSessions == 0,
            "\(pipeline.state.webSocketSessions) sessions still counted"
        )
        try FuzzFailure.check(pipeline.sessions.count == 0, "\(pipeline.sessions.count) sessions still registered")
        let subscriptions = hub.subscriptionsByTopic()
        try FuzzFailure.check(subscriptions.isEmpty, "subscriptions outlive their connection: \(subscriptions)")
    }

    private static func containsHEAD(_ bytes: [UInt8]) -> Bool {
        let head: [UInt8] = Array("HEAD".utf8)
        return (0...(bytes.count - 4)).contains { bytes[$0..<($0 + 4)].elementsEqual(head) }
    }

    /// Responses, one after the other, each with the body its Content-Length gives; after a 101
    /// the WebSocket session's frames. Answers to HEAD have no body, which this reading cannot
    /// tell apart: with a HEAD in the input only the first response is read.
    private static func checkResponses(_ bytes: ByteBuffer, headRequests: Bool) throws(FuzzFailure) {
        var buffer = bytes
        while buffer.readableBytes > 0 {
            let view = Array(buffer.readableBytesView)
            guard let end = headEnd(view) else {
                throw FuzzFailure(
                    "a response head without its end: \(String(decoding: view.prefix(200), as: UTF8.self).debugDescription)"
                )
            }
            let head = String(decoding: view[..<end], as: UTF8.self)
            let lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
            let statusLine = lines[0].split(separator: " ", maxSplits: 2)
            guard statusLine.count >= 2, statusLine[0] == "HTTP/1.1", let status = Int(statusLine[1]) else {
                throw FuzzFailure("not a status line: \(lines[0].debugDescription)")
            }
            try FuzzFailure.check(statuses.contains(status), "the gateway answered \(status)")
            buffer.moveReaderIndex(forwardBy: end + 4)
            if status == 101 {
                try WebSocketSessionTarget.checkServerFrames(buffer)
                return
            }
            var length = 0
            for line in lines.dropFirst() {
                let parts = line.split(separator: ":", maxSplits: 1)
                if parts.count == 2, parts[0].lowercased() == "content-length" {
                    length = Int(parts[1].trimmingPrefix(" ")) ?? 0
                }
                try FuzzFailure.check(
                    parts.count != 2 || parts[0].lowercased() != "transfer-encoding",
                    "a chunked answer (the gateway's answers have a length)"
                )
            }
            if headRequests { return }
            try FuzzFailure.check(buffer.readableBytes >= length, "a body shorter than its Content-Length")
            buffer.moveReaderIndex(forwardBy: length)
        }
    }

    private static func headEnd(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 0...(bytes.count - 4)
        where bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 {
            return index
        }
        return nil
    }
}

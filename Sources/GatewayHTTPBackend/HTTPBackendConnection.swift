import FoundationEssentials
import GatewayCore
import GatewayHub
import GatewayMetrics
import GatewayWebSocket
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// One client connection of an `http` route: its session's application, a hub subscriber, and
/// the driver of its `HTTPBackendConnectionState` — it builds the event requests, posts them,
/// schedules retries and carries out the app's commands. Everything mutable is bound to the
/// client's event loop.
final class HTTPBackendConnection: WebSocketApplication, HubSubscriber, Sendable {
    private struct Inner {
        var state: HTTPBackendConnectionState
        var session: WebSocketSessionHandler?
        /// The open answer's commands, carried out once the session is open.
        var openCommands: [HTTPBackendCommand] = []
        /// The connection's user and tags as last seen: the close event still names them after
        /// the directory has let the connection go.
        var identity = SessionDirectory.Identity()
        /// Nothing more will be posted (told to the service once).
        var ended = false
    }

    /// What every event request says about the connection.
    struct Context: Sendable {
        var target: String
        var peer: String
        var forwarded: [(String, String)]
        var claims: String?
        /// The verified token's `sub`: the connection's user from the start (the open event
        /// comes before the directory lists the connection).
        var subject: String?
        var offered: [String]
    }

    let id: UInt64
    let eventLoop: any EventLoop
    private let service: HTTPBackendRouteService
    private let context: Context
    private let inner: NIOLoopBoundBox<Inner>

    init(id: UInt64, eventLoop: any EventLoop, context: Context, service: HTTPBackendRouteService) {
        self.id = id
        self.eventLoop = eventLoop
        self.context = context
        self.service = service
        let settings = service.settings
        let state = HTTPBackendConnectionState(
            limits: .init(
                queueMessages: settings.queueMessages,
                queueBytes: settings.queueBytes,
                batchMessages: settings.batchMessages,
                retries: settings.retries
            )
        )
        var first = Inner(state: state)
        if let subject = context.subject, SessionDirectory.Identity.isValidName(subject) {
            first.identity.user = subject
        }
        inner = .makeBoxSendingValue(first, eventLoop: eventLoop)
    }

    var subscriberID: UInt64 { id }

    // MARK: Open (before the upgrade)

    /// Posts the `open` event; the app's status decides the upgrade.
    func open(completion: @escaping (UpgradeVerdict) -> Void) {
        postOpen(
            attempt: 0,
            backoff: Backoff(initial: .milliseconds(100), maximum: .seconds(2)),
            completion: completion
        )
    }

    private func postOpen(attempt: Int, backoff: Backoff, completion: @escaping (UpgradeVerdict) -> Void) {
        var headers = headers(event: "open", attempt: attempt)
        if let claims = context.claims { headers.add(name: "WSSGate-Claims", value: claims) }
        if !context.offered.isEmpty {
            headers.add(name: "WSSGate-Subprotocols", value: context.offered.joined(separator: ", "))
        }
        service.metrics.requested()
        var advanced = backoff
        let delay = advanced.next()
        let later = advanced
        let completion = NIOLoopBound(completion, eventLoop: eventLoop)
        service.client.post(headers: headers, body: ByteBuffer(), on: eventLoop).whenComplete { result in
            let completion = completion.value
            switch result {
            case .success(let response):
                self.opened(response, completion: completion)
            case .failure(let error):
                self.service.metrics.failed()
                let failure = error as? HTTPBackendClient.Failure
                if failure?.code == .tooLarge {
                    // The app's mistake, as an invalid answer is: asking again would not help.
                    self.service.log("open answer refused", connection: self.id, error: "\(error)")
                    return self.refuse(502, "the application's answer was not valid", completion)
                }
                guard attempt < self.service.settings.retries else {
                    self.service.log("open event failed", connection: self.id, error: "\(error)")
                    // The client hears the status alone: the app's address and the network error
                    // are the operator's, in the log line above.
                    let status = failure?.code == .timeout ? 504 : 503
                    return self.refuse(
                        status,
                        status == 504 ? "the application did not answer in time" : "the application is unavailable",
                        completion
                    )
                }
                self.service.metrics.retried()
                let bound = NIOLoopBound(completion, eventLoop: self.eventLoop)
                self.eventLoop.scheduleTask(in: delay) {
                    self.postOpen(attempt: attempt + 1, backoff: later, completion: bound.value)
                }
            }
        }
    }

    /// The upgrade was refused: no session, no close event.
    private func refuse(_ status: Int, _ message: String, _ completion: (UpgradeVerdict) -> Void) {
        end()
        completion(.refuse(status: status, message: message))
    }

    private func opened(_ response: HTTPBackendClient.Response, completion: (UpgradeVerdict) -> Void) {
        guard (200..<300).contains(response.status) else {
            let status = (400..<600).contains(response.status) ? response.status : 502
            var text = String(decoding: response.body.readableBytesView.prefix(200), as: UTF8.self)
            if text.isEmpty || response.headers.first(name: "content-type")?.hasPrefix("text/") != true {
                text = "refused by the app (\(response.status))"
            }
            return refuse(status, text, completion)
        }
        do {
            inner.value.openCommands = try HTTPBackendCommands.decode(
                contentType: response.headers.first(name: "content-type"),
                body: response.body
            )
        } catch {
            service.metrics.failed()
            service.log("open answer refused", connection: id, error: "\(error)")
            return refuse(502, "the application's answer was not valid", completion)
        }
        guard let chosen = response.headers.first(name: "sec-websocket-protocol") else {
            return completion(.accept(self))
        }
        guard context.offered.contains(chosen) else {
            return refuse(502, "the app chose subprotocol '\(chosen)', which the client did not offer", completion)
        }
        completion(.acceptAnswering(self, subprotocol: chosen))
    }

    // MARK: WebSocketApplication (on the event loop)

    func sessionDidOpen(_ session: WebSocketSessionHandler) {
        inner.value.session = session
        let commands = inner.value.openCommands
        inner.value.openCommands = []
        carryOut(commands, afterClose: false)
    }

    func session(_ session: WebSocketSessionHandler, didReceive message: WebSocketMessage) {
        perform(inner.value.state.received(message))
    }

    func sessionDidClose(_ session: WebSocketSessionHandler, code: WebSocketErrorCode?) {
        inner.value.session = nil
        service.hub.unsubscribeAll(id)
        perform(inner.value.state.sessionClosed(code: code?.code))
    }

    func upgradeAbandoned() {
        // The app accepted a client that went away before its 101: it hears the close.
        perform(inner.value.state.sessionClosed(code: nil))
    }

    // MARK: HubSubscriber (any thread)

    func deliver(_ message: WebSocketMessage) {
        if eventLoop.inEventLoop {
            // A full send queue is the session's to handle (its overflow policy, counted there).
            _ = inner.value.session?.sendUnlessFull(message)
        } else {
            eventLoop.execute { self.deliver(message) }
        }
    }

    var deliveryLoop: (any EventLoop)? { eventLoop }

    // MARK: Driving the state

    private func perform(_ action: HTTPBackendConnectionState.Action) {
        switch action {
        case .none:
            break
        case .finished:
            end()
        case .post(let event, let attempt):
            post(event, attempt: attempt)
        case .retry(let delay):
            service.metrics.retried()
            eventLoop.scheduleTask(in: delay) { self.perform(self.inner.value.state.retryDue()) }
        case .closeUnavailable(let reason, let lost):
            service.metrics.closedUnavailable()
            if lost > 0 { service.metrics.lost(lost) }
            service.log("client closed: the app is unavailable", connection: id, error: reason)
            inner.value.session?.close(code: service.settings.unavailableCloseCode, reason: "app unavailable")
            perform(inner.value.state.afterUnavailable())
        }
    }

    private func end() {
        guard !inner.value.ended else { return }
        inner.value.ended = true
        service.connectionEnded()
    }

    private func post(_ event: HTTPBackendConnectionState.Event, attempt: Int) {
        var headers: HTTPHeaders
        let body: ByteBuffer
        switch event {
        case .messages(let messages) where messages.count == 1:
            headers = self.headers(event: "message", attempt: attempt)
            let message = messages[0]
            headers.add(name: "WSSGate-Message-Type", value: message.kind == .text ? "text" : "binary")
            headers.add(
                name: "Content-Type",
                value: message.kind == .text ? "text/plain; charset=utf-8" : "application/octet-stream"
            )
            body = message.data
        case .messages(let messages):
            headers = self.headers(event: "messages", attempt: attempt)
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "WSSGate-Messages", value: String(messages.count))
            body = Self.batch(messages)
        case .close(let code):
            headers = self.headers(event: "close", attempt: attempt)
            if let code { headers.add(name: "WSSGate-Close-Code", value: String(code)) }
            body = ByteBuffer()
        }
        service.metrics.requested()
        service.client.post(headers: headers, body: body, on: eventLoop).whenComplete { result in
            switch result {
            case .success(let response) where (200..<300).contains(response.status):
                let commands: [HTTPBackendCommand]
                do {
                    commands = try HTTPBackendCommands.decode(
                        contentType: response.headers.first(name: "content-type"),
                        body: response.body
                    )
                } catch {
                    self.service.metrics.failed()
                    self.service.log("answer refused", connection: self.id, error: "\(error)")
                    // The app's mistake, not the network's: not sent again.
                    return self.failed(
                        neverSent: false,
                        reason: "the app's answer was not valid: \(error)",
                        invalid: true
                    )
                }
                let isClose = if case .close = event { true } else { false }
                self.carryOut(commands, afterClose: isClose)
                self.perform(self.inner.value.state.answered())
            case .success(let response):
                self.service.metrics.failed()
                self.failed(neverSent: false, reason: "the app answered \(response.status)", invalid: false)
            case .failure(let error):
                self.service.metrics.failed()
                let failure = error as? HTTPBackendClient.Failure
                // An answer over max_response_bytes is the app's error, like an invalid one.
                self.failed(
                    neverSent: failure?.neverSent ?? false,
                    reason: "\(error)",
                    invalid: failure?.code == .tooLarge
                )
            }
        }
    }

    private func failed(neverSent: Bool, reason: String, invalid: Bool) {
        if invalid, let session = inner.value.session {
            // An answer that cannot be carried out is the app's error: 1011, as a worker's.
            session.close(code: .unexpectedServerError, reason: "invalid answer from the app")
        }
        perform(inner.value.state.failed(neverSent: neverSent, reason: reason))
    }

    private func headers(event: String, attempt: Int) -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.add(name: "WSSGate-Event", value: event)
        headers.add(name: "WSSGate-Connection", value: String(id))
        headers.add(name: "WSSGate-Route", value: service.routeName)
        headers.add(name: "WSSGate-Path", value: context.target)
        headers.add(name: "WSSGate-Peer", value: context.peer)
        if attempt > 0 { headers.add(name: "WSSGate-Attempt", value: String(attempt)) }
        if let listed = service.identities.directory.listedIdentity(of: id) { inner.value.identity = listed }
        let identity = inner.value.identity
        if let user = identity.user { headers.add(name: "WSSGate-User", value: user) }
        if !identity.tags.isEmpty {
            headers.add(name: "WSSGate-Tags", value: identity.tags.sorted().joined(separator: ","))
        }
        for (name, value) in context.forwarded { headers.add(name: name, value: value) }
        return headers
    }

    /// A `messages` body: `[{"text": "…"}, {"binary": "<base64>"}, …]`.
    static func batch(_ messages: [WebSocketMessage]) -> ByteBuffer {
        struct Item: Encodable {
            var text: String?
            var binary: String?
        }
        let items = messages.map { message in
            message.kind == .text
                ? Item(text: String(buffer: message.data))
                : Item(binary: Data(message.data.readableBytesView).base64EncodedString())
        }
        let encoded = (try? JSONEncoder().encode(items)) ?? Data("[]".utf8)
        return ByteBuffer(bytes: encoded)
    }

    // MARK: Commands

    private func carryOut(_ commands: [HTTPBackendCommand], afterClose: Bool) {
        for command in commands {
            switch command {
            case .send(let target, let kind, let data):
                let message = WebSocketMessage(kind: kind, data: data)
                if isThis(target) {
                    if !afterClose { _ = inner.value.session?.sendUnlessFull(message) }
                } else {
                    service.send(message, to: target)
                }
            case .close(let target, let code, let reason):
                if isThis(target) {
                    if !afterClose { inner.value.session?.close(code: WebSocketErrorCode(code: code), reason: reason) }
                } else {
                    service.close(target, code: code, reason: reason)
                }
            case .subscribe(let topic):
                if !afterClose, inner.value.session != nil { service.hub.subscribe(self, to: topic) }
            case .unsubscribe(let topic):
                if !afterClose { service.hub.unsubscribe(id, from: topic) }
            case .publish(let topic, let kind, let data):
                service.hub.publish(WebSocketMessage(kind: kind, data: data), to: topic)
            case .identify(let user, let add, let remove):
                guard !afterClose, let entry = service.identities.directory.entry(id) else { continue }
                service.identities.directory.setIdentity(of: entry) { identity in
                    if let user { identity.user = user }
                    identity.tags.formUnion(add)
                    identity.tags.subtract(remove)
                }
            }
        }
    }

    private func isThis(_ target: HTTPBackendCommand.Target) -> Bool {
        switch target {
        case .this: true
        case .connection(let other): other == id
        case .user, .tag: false
        }
    }
}
